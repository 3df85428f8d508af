package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// defaultConfigFile is berth's daemon.json, as /etc/docker/daemon.json is
// dockerd's: the same key names, for the settings berth has.
const defaultConfigFile = "/etc/berth/daemon.json"

// fileKeys maps each daemon.json key berth takes to its command-line flag.
var fileKeys = map[string]string{
	"data-root":           "data-root",
	"exec-root":           "exec-root",
	"hosts":               "host",
	"insecure-registries": "insecure-registry",
	"registry-mirrors":    "registry-mirror",
	"debug":               "debug",
	"log-level":           "log-level",
	"log-format":          "log-format",
}

// applyConfigFile reads the daemon's configuration file at path into the
// flags of fs, as dockerd does: a missing file is fine unless it was named
// explicitly; an unknown key, a value of the wrong type, or a setting given
// both in the file and as a flag is an error naming it. The values go
// through the flags' own parsing, so the file and the flags are one path.
func applyConfigFile(flags *pflag.FlagSet, path string, explicit bool) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configuration file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("configuration file %s: %w", path, err)
	}
	var unknown, conflicts []string
	for _, key := range sortedKeys(raw) {
		name, ok := fileKeys[key]
		if !ok {
			unknown = append(unknown, key)
			continue
		}
		if f := flags.Lookup(name); f != nil && f.Changed {
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", key, f.Value, compact(raw[key])))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("configuration file %s: the following directives don't match any configuration option: %s", path, strings.Join(unknown, ", "))
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("configuration file %s: the following directives are specified both as a flag and in the configuration file: %s", path, strings.Join(conflicts, ", "))
	}
	for _, key := range sortedKeys(raw) {
		if err := setFromJSON(flags.Lookup(fileKeys[key]), raw[key]); err != nil {
			return fmt.Errorf("configuration file %s: %s: %w", path, key, err)
		}
	}
	return nil
}

// setFromJSON sets flag f from a JSON value: a string, a boolean, or a
// list of strings for a list flag.
func setFromJSON(f *pflag.Flag, v json.RawMessage) error {
	switch f.Value.Type() {
	case "stringSlice", "stringArray":
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return fmt.Errorf("want a list of strings, got %s", compact(v))
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return sv.Replace(list)
		}
		return fmt.Errorf("flag --%s takes no list", f.Name)
	case "bool":
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("want true or false, got %s", compact(v))
		}
		return f.Value.Set(fmt.Sprint(b))
	default:
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("want a string, got %s", compact(v))
		}
		return f.Value.Set(s)
	}
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}
