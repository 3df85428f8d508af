package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

func TestCopyTreeKeepsMetadata(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.DataRoot(t)
	src := filepath.Join(root, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d"), 0o750))
	must(os.WriteFile(filepath.Join(src, "d/f"), []byte("data"), 0o640))
	must(os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "hard")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(os.Chown(filepath.Join(src, "d/f"), 1234, 5678))
	must(unix.Chmod(filepath.Join(src, "d/f"), 0o4750))
	must(unix.Lsetxattr(filepath.Join(src, "d"), "user.k", []byte("v"), 0))
	must(unix.Lsetxattr(filepath.Join(src, "d"), "trusted.overlay.opaque", []byte("y"), 0))

	dst := filepath.Join(root, "dst")
	must(copyTree(context.Background(), src, dst))

	var a, b unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "d/f"), &a))
	if a.Uid != 1234 || a.Gid != 5678 || a.Mode&0o7777 != 0o4750 {
		t.Errorf("d/f: uid %d gid %d mode %o", a.Uid, a.Gid, a.Mode&0o7777)
	}
	must(unix.Lstat(filepath.Join(dst, "hard"), &b))
	if a.Ino != b.Ino {
		t.Error("hard link not kept")
	}
	if l, err := os.Readlink(filepath.Join(dst, "abs-link")); err != nil || l != "/etc/passwd" {
		t.Errorf("symlink: %q %v", l, err)
	}
	must(unix.Lstat(filepath.Join(dst, "null"), &a))
	if a.Mode&unix.S_IFMT != unix.S_IFCHR || a.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("device node: mode %o rdev %d", a.Mode, a.Rdev)
	}
	must(unix.Lstat(filepath.Join(dst, "fifo"), &a))
	if a.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Error("fifo not kept")
	}
	must(unix.Lstat(filepath.Join(dst, "d"), &a))
	must(unix.Lstat(filepath.Join(src, "d"), &b))
	if a.Mode&0o7777 != 0o750 || a.Mtim != b.Mtim {
		t.Errorf("dir mode %o mtime %v vs %v", a.Mode&0o7777, a.Mtim, b.Mtim)
	}
	for _, x := range []string{"user.k", "trusted.overlay.opaque"} {
		buf := make([]byte, 16)
		n, err := unix.Lgetxattr(filepath.Join(dst, "d"), x, buf)
		if err != nil || n != 1 {
			t.Errorf("xattr %s: %v", x, err)
		}
	}
}
