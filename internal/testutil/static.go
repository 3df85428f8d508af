package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildStatic builds the Go program pkg (an import path) exactly as berth
// embeds its static programs (the hello image, the --init): no cgo, for
// linux/goarch, without paths, symbols, build ID or VCS stamp, so one Go
// version always gives the same bytes. It returns the executable.
func BuildStatic(t testing.TB, pkg, goarch string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
