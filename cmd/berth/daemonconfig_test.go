package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApplyConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "daemon.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(path string, explicit bool, args ...string) (*daemonFlags, error) {
		cmd := newDaemonCommand()
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		err := applyConfigFile(cmd.Flags(), path, explicit)
		f := cmd.Flags()
		get := func(name string) string { return f.Lookup(name).Value.String() }
		return &daemonFlags{get("data-root"), get("registry-mirror"), get("host"), get("debug"), get("log-level")}, err
	}

	// A missing default file is fine; a missing named one is not.
	if _, err := run(filepath.Join(dir, "none.json"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := run(filepath.Join(dir, "none.json"), true); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Fatalf("missing explicit file: %v", err)
	}

	p := write(`{"data-root": "/srv/berth", "registry-mirrors": ["https://m1.example", "https://m2.example"], "hosts": ["unix:///tmp/b.sock"], "debug": true, "log-level": "warn"}`)
	got, err := run(p, true)
	if err != nil {
		t.Fatal(err)
	}
	want := daemonFlags{"/srv/berth", "[https://m1.example,https://m2.example]", "[unix:///tmp/b.sock]", "true", "warn"}
	if *got != want {
		t.Errorf("applied: %+v, want %+v", *got, want)
	}
	// Flags the file does not set are untouched.
	if got, err := run(write(`{"debug": false}`), true, "--data-root", "/x"); err != nil || got.dataRoot != "/x" {
		t.Errorf("flag kept: %+v %v", got, err)
	}

	for _, c := range []struct{ body, want string }{
		{`{"data-root": "/a", "storage-driver": "overlay2"}`, "the following directives don't match any configuration option: storage-driver"},
		{`{"registry-mirrors": "https://m.example"}`, "registry-mirrors: want a list of strings"},
		{`{"debug": "yes"}`, "debug: want true or false"},
		{`{"data-root": 5}`, "data-root: want a string"},
		{`{"data-root": `, "configuration file"},
	} {
		if _, err := run(write(c.body), true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
	_, err = run(write(`{"data-root": "/from-file"}`), true, "--data-root", "/from-flag")
	if err == nil || !strings.Contains(err.Error(), "specified both as a flag and in the configuration file: data-root: (from flag: /from-flag, from file: \"/from-file\")") {
		t.Errorf("conflict: %v", err)
	}
}

type daemonFlags struct{ dataRoot, mirrors, hosts, debug, logLevel string }
