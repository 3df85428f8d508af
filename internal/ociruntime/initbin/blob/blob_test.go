package blob

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstalled(t *testing.T) {
	dir := t.TempDir()
	if file, whole := Installed(dir, "p", "short", 3); file != "" || whole {
		t.Fatalf("an id too short: %q %v", file, whole)
	}
	id := " 0123456789abcdef\n"
	file, whole := Installed(dir, "p", id, 3)
	if file != filepath.Join(dir, "p-0123456789ab") || whole {
		t.Fatalf("nothing installed: %q %v", file, whole)
	}
	if err := os.WriteFile(file, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, whole := Installed(dir, "p", id, 3); whole {
		t.Fatal("mode 0644 counted as installed")
	}
	os.Chmod(file, 0o555)
	if _, whole := Installed(dir, "p", id, 4); whole {
		t.Fatal("another size counted as installed")
	}
	if _, whole := Installed(dir, "p", id, 3); !whole {
		t.Fatal("a whole copy not found")
	}
}
