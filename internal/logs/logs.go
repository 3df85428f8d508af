// Package logs stores and reads back what containers write to stdout and
// stderr, in the formats of Docker's log drivers: json-file (Docker's own
// format, with rotation), local (a compact framed format, rotated and
// compressed) and none.
//
// The writing side is a Copier per container stream, which splits output
// into lines and hands them to a Driver; the reading side is Read, which
// serves `docker logs` with tail, since, until and follow across rotated
// files.
package logs

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth/berth/internal/errdefs"
)

// Entry is one line (or one piece of an over-long line) of container output.
type Entry struct {
	Stream  string    // "stdout" or "stderr"
	Line    []byte    // the bytes, including the trailing newline if the line had one
	Time    time.Time // when the monitor read it
	Partial bool      // the line continues in the next entry (no newline yet)
}

// Driver stores entries. Write is called by one goroutine per stream; a
// Driver must be safe for that.
type Driver interface {
	Write(e Entry) error
	Close() error
}

// Config is a container's --log-driver and --log-opt, as Docker's
// HostConfig.LogConfig carries them.
type Config struct {
	Type   string
	Config map[string]string
}

// Driver names.
const (
	JSONFile = "json-file"
	Local    = "local"
	None     = "none"
)

// options are a Config validated and with defaults applied.
type options struct {
	driver   string
	maxSize  int64 // bytes; 0 = never rotate
	maxFile  int   // files kept, including the live one
	compress bool  // gzip rotated files
}

// parseConfig validates cfg, naming the option that is wrong.
func parseConfig(cfg Config) (options, error) {
	o := options{driver: cfg.Type, maxFile: 1}
	if o.driver == "" {
		o.driver = JSONFile
	}
	switch o.driver {
	case JSONFile:
	case Local:
		// Docker's local driver defaults: 20 MB, 5 files, compressed.
		o.maxSize, o.maxFile, o.compress = 20<<20, 5, true
	case None:
		if len(cfg.Config) > 0 {
			return o, errdefs.Invalidf("log driver none takes no options")
		}
		return o, nil
	default:
		return o, errdefs.Invalidf("log driver %q is not supported: use json-file, local or none", cfg.Type)
	}
	for k, v := range cfg.Config {
		var err error
		switch k {
		case "max-size":
			o.maxSize, err = parseSize(v)
			if err == nil && o.maxSize <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "max-file":
			o.maxFile, err = strconv.Atoi(v)
			if err == nil && o.maxFile < 1 {
				err = fmt.Errorf("must be at least 1")
			}
		case "compress":
			o.compress, err = strconv.ParseBool(v)
		case "labels", "labels-regex", "env", "env-regex", "tag":
			// Accepted for compatibility; berth does not add attrs to lines.
		default:
			return o, errdefs.Invalidf("unknown log opt %q for %s log driver", k, o.driver)
		}
		if err != nil {
			return o, errdefs.Invalidf("log opt %s=%q: %v", k, v, err)
		}
	}
	if _, ok := cfg.Config["max-file"]; ok && o.maxSize == 0 && o.maxFile > 1 {
		return o, errdefs.Invalidf("log opt max-file requires max-size to be set")
	}
	return o, nil
}

// parseSize reads Docker's sizes: "10m", "1g", "512k", "1024" (bytes).
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suffix, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "b": 1} {
		if n, ok := strings.CutSuffix(s, suffix); ok && n != "" && n[len(n)-1] >= '0' && n[len(n)-1] <= '9' {
			s, mult = n, m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size")
	}
	return int64(n * float64(mult)), nil
}

// ValidateConfig checks cfg without opening anything, for create-time errors.
func ValidateConfig(cfg Config) error {
	_, err := parseConfig(cfg)
	return err
}

// Path is the live log file of container id in dir for the driver.
func Path(dir, id string, cfg Config) string {
	o, _ := parseConfig(cfg)
	if o.driver == Local {
		return filepath.Join(dir, "container.log")
	}
	return filepath.Join(dir, id+"-json.log")
}

// Open returns the driver cfg names, writing into dir (the container's
// directory) for container id.
func Open(dir, id string, cfg Config) (Driver, error) {
	o, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch o.driver {
	case None:
		return noneDriver{}, nil
	case Local:
		return openFileDriver(Path(dir, id, cfg), o, encodeLocal)
	}
	return openFileDriver(Path(dir, id, cfg), o, encodeJSON)
}

type noneDriver struct{}

func (noneDriver) Write(Entry) error { return nil }
func (noneDriver) Close() error      { return nil }
