package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree at src to dst (which must not exist), keeping
// owners, modes, times, xattrs, hard links, symlinks, device nodes and fifos.
// Symlinks are copied, never followed; sockets are skipped.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[[2]uint64]string{}}
	return c.copy(src, dst)
}

type copier struct {
	ctx   context.Context
	links map[[2]uint64]string // (dev, ino) of a multiply linked file → its first copy
}

func (c *copier) copy(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := c.links[k]; ok {
			if err := os.Link(first, dst); err != nil {
				return err
			}
			return nil
		}
		c.links[k] = dst
	}
	switch mode {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := c.copy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	case unix.S_IFSOCK:
		return nil
	default:
		return fmt.Errorf("%s: unknown file type %o", src, mode)
	}
	return copyMeta(src, dst, &st)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta sets dst's owner, xattrs, mode and times from st (src's).
func copyMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// After chown, which clears set-id bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return &os.PathError{Op: "llistxattr", Path: src, Err: err}
	}
	if size == 0 {
		return nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(src, buf)
	if err != nil {
		return &os.PathError{Op: "llistxattr", Path: src, Err: err}
	}
	for _, name := range splitNul(buf[:n]) {
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return &os.PathError{Op: "lgetxattr " + name, Path: src, Err: err}
		}
		val := make([]byte, vsize)
		vn, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			return &os.PathError{Op: "lgetxattr " + name, Path: src, Err: err}
		}
		if err := unix.Lsetxattr(dst, name, val[:vn], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
