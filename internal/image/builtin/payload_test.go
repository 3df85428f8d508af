package builtin

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

var update = flag.Bool("update", false, "rebuild hello.gz and hello.gz.version from internal/hello")

const versionFile = "hello.gz.version"

// buildHello builds internal/hello exactly as the image ships it.
func buildHello(t *testing.T) []byte {
	return testutil.BuildStatic(t, "github.com/berth/berth/internal/hello", Architecture)
}

func goVersion() string { return runtime.Version() + " " + OS + "/" + Architecture }

// TestPayloadMatchesSource checks that the committed hello.gz is what
// internal/hello builds to, so the embedded program cannot drift from its
// source. The build is only reproducible with the Go version hello.gz was
// made with (recorded in hello.gz.version): with another one the test skips.
// `go generate ./internal/image/builtin` (-update) rebuilds both files.
func TestPayloadMatchesSource(t *testing.T) {
	if testing.Short() && !*update {
		t.Skip("builds a binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	if *update {
		program := buildHello(t)
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(program)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("hello.gz", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(versionFile, []byte(goVersion()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote hello.gz (%d bytes, program %d bytes)", buf.Len(), len(program))
		return
	}
	recorded, err := os.ReadFile(versionFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(recorded)); got != goVersion() {
		t.Skipf("hello.gz was built with %s, this is %s: not reproducible", got, goVersion())
	}
	want := buildHello(t)
	got, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hello.gz (%d bytes) is not what internal/hello builds to (%d bytes): run go generate ./internal/image/builtin", len(got), len(want))
	}
}
