package initbin

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestInstall(t *testing.T) {
	defer func(saved program) { initProgram = saved }(initProgram)
	initProgram.bytes, initProgram.id = "", ""
	if path, err := Install(t.TempDir()); path != "" || err != nil {
		t.Fatalf("nothing embedded: %q %v", path, err)
	}
	program := []byte("#!/bin/true\n")
	initProgram.bytes, initProgram.id = string(program), "0123456789abcdef0123\n"
	dir := filepath.Join(t.TempDir(), "@init")
	path, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "berth-init-0123456789ab" {
		t.Errorf("installed as %s", path)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o555 {
		t.Fatalf("%v %v", st, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, program) {
		t.Errorf("content %q", b)
	}
	// A second install finds it; no temp file is left.
	if again, err := Install(dir); again != path || err != nil {
		t.Fatalf("second install: %q %v", again, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d entries", len(ents))
	}
	// A damaged file (another size) is replaced.
	os.Chmod(path, 0o700)
	os.WriteFile(path, []byte("x"), 0o700)
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, program) {
		t.Errorf("after repair: %q", b)
	}
	initProgram.id = "short"
	if _, err := Install(dir); err == nil {
		t.Error("a short id was accepted")
	}
}
