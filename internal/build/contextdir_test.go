package build

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopyContext(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{
		"Dockerfile": "FROM scratch\n", ".dockerignore": "*.log\nskip/\n", "a.txt": "a",
		"sub/b.txt": "b", "x.log": "log", "skip/s.txt": "s",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "sub/up")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var known statSums
	dst := filepath.Join(t.TempDir(), "ctx")
	sums, err := copyContext(context.Background(), root, dst, "Dockerfile", &known)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Dockerfile", ".dockerignore", "a.txt", "sub/b.txt"} {
		data, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if sums[name] != sha256.Sum256(data) {
			t.Errorf("%s: sum differs from its content's", name)
		}
	}
	for _, name := range []string{"x.log", "skip", "fifo"} {
		if _, err := os.Lstat(filepath.Join(dst, name)); !os.IsNotExist(err) {
			t.Errorf("%s was copied (%v)", name, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "sub/up")); err != nil || l != "../../etc/passwd" {
		t.Errorf("sub/up = %q, %v; want the link itself", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "a.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("a.txt mode %v, %v", fi.Mode(), err)
	}

	// An unchanged file's sum comes from its stat: poison it to see.
	f, err := os.Open(filepath.Join(src, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := statKeyOf(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fake := [sha256.Size]byte{1}
	known.put(key, fake)
	again := func() fileSums {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "ctx")
		sums, err := copyContext(context.Background(), root, dst, "Dockerfile", &known)
		if err != nil {
			t.Fatal(err)
		}
		return sums
	}
	if got := again()["a.txt"]; got != fake {
		t.Fatal("an unchanged file was hashed again")
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("A"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := again()["a.txt"]; got != sha256.Sum256([]byte("A")) {
		t.Fatal("a changed file kept its old sum")
	}
}
