// Package treecopy copies file trees with everything a layer or a volume
// holds: owners, modes (set-id bits too), times, extended attributes, hard
// links, symlinks, device nodes and fifos. Sockets are skipped.
//
// Every step works on directory file descriptors and names in them, never
// on a path the kernel walks: a source symlink is copied as a symlink and
// never followed, and a destination another process changes while the copy
// runs (a volume that a running container shares) cannot turn a copy step
// into a write outside the destination. Each entry is created with O_EXCL
// semantics and then opened with O_NOFOLLOW; its owner, mode and times are
// set through that descriptor (or, for a symlink, on the link itself).
package treecopy

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// Tree copies the directory tree at src to dst, which must not exist.
func Tree(ctx context.Context, src, dst string) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return Into(ctx, s, d)
}

// Into copies what directory src holds into directory dst, both already
// open, and then src's owner, mode, times and extended attributes onto dst
// itself. A name that exists in dst already is an error: callers copy into
// a directory they found empty.
func Into(ctx context.Context, src, dst *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: src.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "copy", Path: src.Name(), Err: unix.ENOTDIR}
	}
	c := &copier{ctx: ctx, dstRoot: int(dst.Fd()), links: map[[2]uint64]string{}}
	if err := c.contents(int(src.Fd()), int(dst.Fd()), ""); err != nil {
		return err
	}
	return setMeta(dst.Name(), fdPath(int(dst.Fd())), fdPath(int(src.Fd())), true, &st)
}

type copier struct {
	ctx     context.Context
	dstRoot int
	links   map[[2]uint64]string // (dev, ino) of a multiply linked file → its first copy, relative to dstRoot
}

// contents copies the entries of directory sdir into ddir; rel is sdir's
// path relative to the copy's root, for links and errors.
func (c *copier) contents(sdir, ddir int, rel string) error {
	// A new open file of the directory, read from its start whatever
	// the caller's descriptor has read already.
	fd, err := openNoFollow(sdir, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return &os.PathError{Op: "open", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return &os.PathError{Op: "readdir", Path: rel, Err: err}
	}
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.entry(sdir, ddir, name, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) entry(sdir, ddir int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(sdir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: rel, Err: err}
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := c.links[k]; ok {
			return c.link(first, ddir, name, rel)
		}
		c.links[k] = rel
	}
	fail := func(op string, err error) error { return &os.PathError{Op: op, Path: rel, Err: err} }
	switch mode {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(ddir, name, 0o700); err != nil {
			return fail("mkdir", err)
		}
		s, err := openNoFollow(sdir, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fail("open", err)
		}
		defer unix.Close(s)
		d, err := openNoFollow(ddir, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fail("open", err)
		}
		defer unix.Close(d)
		if err := c.contents(s, d, rel); err != nil {
			return err
		}
		// After the contents, whose creation changed its times.
		return setMeta(rel, fdPath(d), fdPath(s), true, &st)
	case unix.S_IFREG:
		sfd, err := openNoFollow(sdir, name, unix.O_RDONLY)
		if err != nil {
			return fail("open", err)
		}
		s := os.NewFile(uintptr(sfd), rel)
		defer s.Close()
		dfd, err := openNoFollow(ddir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL)
		if err != nil {
			return fail("create", err)
		}
		d := os.NewFile(uintptr(dfd), rel)
		defer d.Close()
		// io.Copy between files uses copy_file_range (reflinks where the
		// filesystem has them) and falls back to read and write.
		if _, err := io.Copy(d, s); err != nil {
			return fail("copy", err)
		}
		return setMeta(rel, fdPath(dfd), fdPath(sfd), true, &st)
	case unix.S_IFLNK:
		target, err := os.Readlink(entryPath(sdir, name))
		if err != nil {
			return fail("readlink", err)
		}
		if err := unix.Symlinkat(target, ddir, name); err != nil {
			return fail("symlink", err)
		}
		return setLinkMeta(rel, ddir, name, sdir, &st)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(ddir, name, st.Mode, int(st.Rdev)); err != nil {
			return fail("mknod", err)
		}
		d, err := openNoFollow(ddir, name, unix.O_PATH)
		if err != nil {
			return fail("open", err)
		}
		defer unix.Close(d)
		var got unix.Stat_t
		if err := unix.Fstat(d, &got); err != nil || got.Mode&unix.S_IFMT != mode {
			return fail("mknod", unix.EEXIST) // replaced under us
		}
		return setMeta(rel, fdPath(d), entryPath(sdir, name), false, &st)
	case unix.S_IFSOCK:
		return nil
	default:
		return fail("copy", errors.New("unknown file type "+strconv.FormatUint(uint64(mode), 8)))
	}
}

// link makes name in ddir a hard link to first (a copy made earlier,
// relative to the destination root), reached without following symlinks.
func (c *copier) link(first string, ddir int, name, rel string) error {
	dir, base := path.Split(first)
	pfd := c.dstRoot
	if dir != "" {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		fd, err := unix.Openat2(c.dstRoot, dir, &how)
		if err != nil {
			return &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(fd)
		pfd = fd
	}
	if err := unix.Linkat(pfd, base, ddir, name, 0); err != nil {
		return &os.PathError{Op: "link", Path: rel, Err: err}
	}
	return nil
}

func openNoFollow(dir int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// fdPath names what descriptor fd refers to; the kernel resolves it to
// that very inode, whatever its path has become since.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// entryPath names entry name of directory dir: dir is reached through its
// descriptor, and name, the last component, is never followed by the l*
// calls it is used with.
func entryPath(dir int, name string) string { return fdPath(dir) + "/" + name }

// setMeta gives dst (an fdPath, resolved to its inode) src's owner,
// extended attributes, mode and times. src is an fdPath (follow) or an
// entryPath (not followed); rel names the entry in errors.
func setMeta(rel, dst, src string, follow bool, st *unix.Stat_t) error {
	if err := unix.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "chown", Path: rel, Err: err}
	}
	if err := copyXattrs(rel, dst, src, follow, true); err != nil {
		return err
	}
	// After chown, which clears set-id bits.
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: rel, Err: err}
	}
	if err := unix.UtimesNano(dst, []unix.Timespec{st.Atim, st.Mtim}); err != nil {
		return &os.PathError{Op: "utimes", Path: rel, Err: err}
	}
	return nil
}

// setLinkMeta gives symlink name in ddir the owner, extended attributes
// and times of the symlink name in sdir (st), on the link itself.
func setLinkMeta(rel string, ddir int, name string, sdir int, st *unix.Stat_t) error {
	if err := unix.Fchownat(ddir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lchown", Path: rel, Err: err}
	}
	if err := copyXattrs(rel, entryPath(ddir, name), entryPath(sdir, name), false, false); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(ddir, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: rel, Err: err}
	}
	return nil
}

// copyXattrs copies src's extended attributes to dst; followSrc and
// followDst say whether the last component of each is followed.
func copyXattrs(rel, dst, src string, followSrc, followDst bool) error {
	list, get := unix.Llistxattr, unix.Lgetxattr
	if followSrc {
		list, get = unix.Listxattr, unix.Getxattr
	}
	set := unix.Lsetxattr
	if followDst {
		set = unix.Setxattr
	}
	size, err := list(src, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return &os.PathError{Op: "listxattr", Path: rel, Err: err}
	}
	if size == 0 {
		return nil
	}
	buf := make([]byte, size)
	n, err := list(src, buf)
	if err != nil {
		return &os.PathError{Op: "listxattr", Path: rel, Err: err}
	}
	for _, name := range splitNul(buf[:n]) {
		vsize, err := get(src, name, nil)
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: rel, Err: err}
		}
		val := make([]byte, vsize)
		vn, err := get(src, name, val)
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: rel, Err: err}
		}
		if err := set(dst, name, val[:vn], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return &os.PathError{Op: "setxattr " + name, Path: rel, Err: err}
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
