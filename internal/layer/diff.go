package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// DiffOverlay writes to w the layer tar of an overlay upper directory:
// every entry in it, with overlay whiteouts (0/0 character devices) turned
// back into ".wh." files and opaque directories (trusted.overlay.opaque or
// user.overlay.opaque = "y") into ".wh..wh..opq" entries. overlayfs'
// private xattrs are not exported. Redirected directories (redirect_dir)
// and metacopy files are not supported: berth never mounts with them.
//
// upper may belong to a running container: files are opened relative to
// directory fds and never through a symlink, so a container swapping a file
// for a symlink while it is read cannot make the diff read host files.
func DiffOverlay(ctx context.Context, w io.Writer, upper string) error {
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	defer unix.Close(fd)
	d := newDiffer(ctx, w)
	if err := d.overlayDir(fd, ""); err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	return d.tw.Close()
}

// DiffDirs writes to w the layer tar of the changes from lower to upper, two
// full trees: added and changed entries, ".wh." whiteouts for removed ones,
// and the parent directories of every change (so their modes and owners
// survive, as Docker does). Regular files count as changed when their type,
// mode, owner, xattrs, size or mtime differ, or, when both mtimes have no
// sub-second part, when their contents differ.
func DiffDirs(ctx context.Context, w io.Writer, lower, upper string) error {
	lfd, err := unix.Open(lower, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff %s: %w", lower, err)
	}
	defer unix.Close(lfd)
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	defer unix.Close(ufd)
	d := newDiffer(ctx, w)
	if err := d.dirsDir(lfd, ufd, ""); err != nil {
		return fmt.Errorf("diff %s → %s: %w", lower, upper, err)
	}
	return d.tw.Close()
}

type devIno struct{ dev, ino uint64 }

type differ struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[devIno]string
	// pending holds the headers of the directories being walked that are
	// not written yet; writing any entry writes them first.
	pending []*pendingDir
	buf     []byte
}

type pendingDir struct {
	hdr     *tar.Header
	written bool
}

func newDiffer(ctx context.Context, w io.Writer) *differ {
	return &differ{ctx: ctx, tw: tar.NewWriter(w), links: map[devIno]string{}, buf: make([]byte, 128<<10)}
}

// readNames lists a directory fd's entries, sorted.
func readNames(fd int) ([]string, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func openSubdir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// header builds the tar header of name (in dirfd) from its lstat.
func header(dirfd int, name, rel string, st *unix.Stat_t) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return nil, err
		}
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, nil // sockets: not part of a layer
	}
	xa, err := listXattrs(procPath(dirfd, name))
	if err != nil {
		return nil, fmt.Errorf("%s: xattrs: %w", rel, err)
	}
	for k, v := range xa {
		if isOverlayXattr(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = v
	}
	return hdr, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// listXattrs reads all xattrs of p without following a final symlink.
func listXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		return nil, err
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, k := range bytes.Split(buf[:sz], []byte{0}) {
		if len(k) == 0 {
			continue
		}
		key := string(k)
		vsz, err := unix.Lgetxattr(p, key, nil)
		if err != nil {
			if err == unix.ENODATA {
				continue
			}
			return nil, err
		}
		v := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(p, key, v)
		if err != nil {
			return nil, err
		}
		m[key] = string(v[:vsz])
	}
	return m, nil
}

// write writes hdr (first any pending parent directories) and, for a
// regular file, its content read from name in dirfd.
func (d *differ) write(dirfd int, name string, hdr *tar.Header, st *unix.Stat_t) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	for _, p := range d.pending {
		if !p.written {
			if err := d.tw.WriteHeader(p.hdr); err != nil {
				return err
			}
			p.written = true
		}
	}
	if hdr.Typeflag != tar.TypeReg || st == nil {
		return d.tw.WriteHeader(hdr)
	}
	if st.Nlink > 1 {
		key := devIno{st.Dev, st.Ino}
		if first, ok := d.links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			return d.tw.WriteHeader(hdr)
		}
		d.links[key] = hdr.Name
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Ino != st.Ino || now.Dev != st.Dev {
		return fmt.Errorf("%s: replaced while being read", hdr.Name)
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(d.tw, io.LimitReader(f, hdr.Size), d.buf); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	return nil // a file that shrank makes tar's writer fail at the next header
}

func (d *differ) pushDir(hdr *tar.Header, written bool) {
	d.pending = append(d.pending, &pendingDir{hdr: hdr, written: written})
}

func (d *differ) popDir() { d.pending = d.pending[:len(d.pending)-1] }

func whiteoutHeader(rel string, st *unix.Stat_t) *tar.Header {
	h := &tar.Header{Name: rel, Typeflag: tar.TypeReg, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}
	if st != nil {
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.ModTime = time.Unix(st.Mtim.Sec, 0)
	}
	return h
}

func (d *differ) overlayDir(dirfd int, rel string) error {
	names, err := readNames(dirfd)
	if err != nil {
		return err
	}
	for _, name := range names {
		crel := path.Join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			if err := d.write(dirfd, name, whiteoutHeader(path.Join(rel, WhiteoutPrefix+name), &st), nil); err != nil {
				return err
			}
			continue
		}
		hdr, err := header(dirfd, name, crel, &st)
		if err != nil {
			return err
		}
		if hdr == nil {
			continue
		}
		if err := d.write(dirfd, name, hdr, &st); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeDir {
			continue
		}
		if isOpaque(procPath(dirfd, name)) {
			if err := d.write(dirfd, name, whiteoutHeader(path.Join(crel, WhiteoutOpaque), &st), nil); err != nil {
				return err
			}
		}
		cfd, err := openSubdir(dirfd, name)
		if err != nil {
			return err
		}
		d.pushDir(hdr, true)
		err = d.overlayDir(cfd, crel)
		d.popDir()
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func isOpaque(p string) bool {
	for _, k := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		b := make([]byte, 8)
		n, err := unix.Lgetxattr(p, k, b)
		if err == nil && string(b[:n]) == "y" {
			return true
		}
	}
	return false
}

// dirsDir diffs the directory ufd against lfd (-1: everything is new).
func (d *differ) dirsDir(lfd, ufd int, rel string) error {
	unames, err := readNames(ufd)
	if err != nil {
		return err
	}
	var lnames []string
	if lfd >= 0 {
		if lnames, err = readNames(lfd); err != nil {
			return err
		}
	}
	inUpper := make(map[string]bool, len(unames))
	for _, n := range unames {
		inUpper[n] = true
	}
	all := slices.Clone(unames)
	for _, n := range lnames {
		if !inUpper[n] {
			all = append(all, n)
		}
	}
	slices.Sort(all)
	lset := make(map[string]bool, len(lnames))
	for _, n := range lnames {
		lset[n] = true
	}

	for _, name := range all {
		crel := path.Join(rel, name)
		if !inUpper[name] {
			var lst unix.Stat_t
			var stp *unix.Stat_t
			if unix.Fstatat(lfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW) == nil {
				stp = &lst
			}
			if err := d.write(-1, "", whiteoutHeader(path.Join(rel, WhiteoutPrefix+name), stp), nil); err != nil {
				return err
			}
			continue
		}
		var ust unix.Stat_t
		if err := unix.Fstatat(ufd, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return err
		}
		hdr, err := header(ufd, name, crel, &ust)
		if err != nil {
			return err
		}
		if hdr == nil {
			continue
		}
		var lst unix.Stat_t
		inLower := lset[name] && unix.Fstatat(lfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW) == nil
		sameType := inLower && lst.Mode&unix.S_IFMT == ust.Mode&unix.S_IFMT
		isDir := hdr.Typeflag == tar.TypeDir

		changed := true
		if sameType {
			changed, err = d.changed(lfd, ufd, name, &lst, &ust, hdr)
			if err != nil {
				return err
			}
		}
		if !isDir {
			if changed {
				if err := d.write(ufd, name, hdr, &ust); err != nil {
					return err
				}
			}
			continue
		}
		if changed {
			if err := d.write(ufd, name, hdr, &ust); err != nil {
				return err
			}
		}
		cufd, err := openSubdir(ufd, name)
		if err != nil {
			return err
		}
		clfd := -1
		if sameType {
			if clfd, err = openSubdir(lfd, name); err != nil {
				unix.Close(cufd)
				return err
			}
		}
		d.pushDir(hdr, changed)
		err = d.dirsDir(clfd, cufd, crel)
		d.popDir()
		unix.Close(cufd)
		if clfd >= 0 {
			unix.Close(clfd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// changed compares two entries of the same type.
func (d *differ) changed(lfd, ufd int, name string, lst, ust *unix.Stat_t, uhdr *tar.Header) (bool, error) {
	if lst.Dev == ust.Dev && lst.Ino == ust.Ino {
		return false, nil
	}
	if lst.Mode != ust.Mode || lst.Uid != ust.Uid || lst.Gid != ust.Gid || lst.Rdev != ust.Rdev {
		return true, nil
	}
	lhdr, err := header(lfd, name, uhdr.Name, lst)
	if err != nil {
		return false, err
	}
	if lhdr.Linkname != uhdr.Linkname || !maps(lhdr.PAXRecords, uhdr.PAXRecords) {
		return true, nil
	}
	switch ust.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return false, nil // a directory's own mtime follows its children
	case unix.S_IFREG:
		if lst.Size != ust.Size || lst.Mtim != ust.Mtim {
			return true, nil
		}
		if ust.Mtim.Nsec != 0 {
			return false, nil
		}
		same, err := sameContent(lfd, ufd, name)
		return !same, err
	}
	return lst.Mtim != ust.Mtim, nil
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameContent(lfd, ufd int, name string) (bool, error) {
	open := func(dfd int) (*os.File, error) {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
	lf, err := open(lfd)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	uf, err := open(ufd)
	if err != nil {
		return false, err
	}
	defer uf.Close()
	lb, ub := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		ln, lerr := io.ReadFull(lf, lb)
		un, uerr := io.ReadFull(uf, ub)
		if ln != un || !bytes.Equal(lb[:ln], ub[:un]) {
			return false, nil
		}
		if lerr == io.EOF || lerr == io.ErrUnexpectedEOF {
			return uerr == io.EOF || uerr == io.ErrUnexpectedEOF, nil
		}
		if lerr != nil {
			return false, lerr
		}
		if uerr != nil {
			return false, uerr
		}
	}
}
