package treecopy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

// TestTreeKeepsMetadata copies what a layer holds: owners, set-id bits,
// hard links, device nodes, fifos and trusted xattrs (root only).
func TestTreeKeepsMetadata(t *testing.T) {
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
	must(Tree(context.Background(), src, dst))

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

// TestIntoWithoutRoot copies a tree of the caller's own files into an
// existing directory: contents, the directory's own mode and times,
// symlinks kept as links (never followed out of the source), hard links.
func TestIntoWithoutRoot(t *testing.T) {
	root := t.TempDir()
	src, dst, outside := filepath.Join(root, "src"), filepath.Join(root, "dst"), filepath.Join(root, "outside")
	for _, d := range []string{src + "/a/b", dst, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a/b/f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "a/b/f"), filepath.Join(src, "a/hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(src, 0o1777); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	s, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := s.Readdirnames(-1); err != nil { // the copy reads from the start all the same
		t.Fatal(err)
	}
	if err := Into(context.Background(), s, d); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a/b/f")); err != nil || string(b) != "data" {
		t.Fatalf("a/b/f: %q %v", b, err)
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "a/b/f"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(dst, "a/hard"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Mode&0o777 != 0o640 {
		t.Errorf("hard link kept: %v, mode %o", a.Ino == b.Ino, a.Mode&0o777)
	}
	if l, err := os.Readlink(filepath.Join(dst, "dirlink")); err != nil || l != outside {
		t.Errorf("dirlink: %q %v", l, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode()&os.ModePerm != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("the destination's own mode is not the source's: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "a")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("a's mtime: %v %v", fi.ModTime(), err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the copy wrote through a symlink: %v", entries)
	}
}

// TestIntoRefusesPlantedSymlink: a name that exists in the destination
// (here a symlink another process planted, pointing out) fails the copy;
// nothing is written where it points.
func TestIntoRefusesPlantedSymlink(t *testing.T) {
	root := t.TempDir()
	src, dst, outside := filepath.Join(root, "src"), filepath.Join(root, "dst"), filepath.Join(root, "outside")
	for _, d := range []string{src + "/d", dst, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "d/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"d", "file"} {
		if err := os.Symlink(outside, filepath.Join(dst, name)); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := os.Open(src)
	defer s.Close()
	d, _ := os.Open(dst)
	defer d.Close()
	err := Into(context.Background(), s, d)
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("copy over a planted symlink: %v, want EEXIST", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the copy wrote through a planted symlink: %v", entries)
	}
}
