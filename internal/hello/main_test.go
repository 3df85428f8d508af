package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"debug/elf"
)

// TestBuildsStaticAndGreets builds the program as the image ships it
// (CGO_ENABLED=0) and checks it is a static binary that prints the greeting.
func TestBuildsStaticAndGreets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("hello must be static: it runs in an image with nothing else in it")
		}
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Hello from berth!") {
		t.Fatalf("output %q lacks the greeting", out)
	}
}
