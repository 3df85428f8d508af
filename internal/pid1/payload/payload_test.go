package payload

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

var update = flag.Bool("update", false, "rebuild pid1.gz and pid1.gz.version from internal/pid1")

const versionFile = "pid1.gz.version"

// build builds internal/pid1 as it ships.
func build(t *testing.T) []byte {
	return testutil.BuildStatic(t, "github.com/berth/berth/internal/pid1", runtime.GOARCH)
}

func goVersion() string { return runtime.Version() + " linux/" + runtime.GOARCH }

// TestPayloadMatchesSource checks that the committed pid1.gz is what
// internal/pid1 builds to (with the Go version recorded in
// pid1.gz.version; with another the build is not reproducible and the test
// skips). `go generate ./internal/pid1/payload` rebuilds both files.
func TestPayloadMatchesSource(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	if *update {
		program := build(t)
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(program)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("pid1.gz", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(versionFile, []byte(goVersion()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	recorded, err := os.ReadFile(versionFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(recorded)); got != goVersion() {
		t.Skipf("pid1.gz was built with %s, this is %s: not reproducible", got, goVersion())
	}
	got, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, build(t)) {
		t.Fatal("pid1.gz is not what internal/pid1 builds to: run go generate ./internal/pid1/payload")
	}
}

// TestInit runs the installed init as a container would: the command's exit
// code and a killing signal come through, a missing command is 127, and a
// child the command leaves behind does not change the code. (Reaping
// orphans needs it to be pid 1: test/integration runs it in a container.)
func TestInit(t *testing.T) {
	dir := t.TempDir()
	path, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := Install(dir); err != nil || again != path {
		t.Fatalf("second install: %q %v", again, err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--", "sh", "-c", "exit 7"}, 7},
		{[]string{"--", "sh", "-c", "kill -TERM $$"}, 143},
		{[]string{"--", "no-such-command-here"}, 127},
		// The shell leaves a background child behind.
		{[]string{"--", "sh", "-c", "sleep 0.1 & exit 3"}, 3},
	} {
		err := exec.Command(path, tc.args...).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

// TestInstallReplacesStale checks that a program already in place is kept
// only when it is the embedded one: a file of the same size with one byte
// changed, a truncated one, or one with the wrong mode is replaced.
func TestInstallReplacesStale(t *testing.T) {
	want, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !installed(path) {
		t.Fatal("a fresh install is not recognised as installed")
	}
	flipped := bytes.Clone(want)
	flipped[len(flipped)/2] ^= 0xff
	for name, stale := range map[string]struct {
		body []byte
		mode os.FileMode
	}{
		"one byte changed": {flipped, 0o755},
		"truncated":        {want[:len(want)-1], 0o755},
		"wrong mode":       {want, 0o644},
	} {
		if err := os.WriteFile(path, stale.body, stale.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, stale.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Install(dir); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if !bytes.Equal(got, want) || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: not replaced by the embedded program", name)
		}
	}
}
