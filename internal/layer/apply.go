package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// WhiteoutMode says how Apply turns a layer's whiteout entries into files.
// It has no usable zero value: the caller must know what dir is.
type WhiteoutMode int

const (
	// OverlayWhiteouts: dir is an overlay UPPER directory (empty, holding
	// only this layer). ".wh.x" becomes a 0/0 character device "x" and
	// ".wh..wh..opq" the xattr trusted.overlay.opaque="y" on its directory.
	// Needs root (mknod, trusted xattrs).
	OverlayWhiteouts WhiteoutMode = iota + 1
	// ApplyWhiteouts: dir holds the full merged tree (the copying
	// snapshotter, or an overlay mount). ".wh.x" removes x; an opaque
	// directory loses every child this layer did not itself create.
	ApplyWhiteouts
)

// Whiteout names (Docker / OCI image-spec conventions).
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"

	whiteoutMetaPrefix = ".wh..wh."
)

// IDMap maps a range of IDs in the layer (the container's view) to IDs on
// the host, as in a user namespace's uid_map.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// Whiteouts is required.
	Whiteouts WhiteoutMode
	// AllowDevices lets character and block device entries be created.
	// When false (the default) they are SKIPPED, counted and logged, never
	// an error: images commonly ship /dev nodes the runtime replaces anyway.
	// FIFOs are always allowed.
	AllowDevices bool
	// UIDMap and GIDMap shift ownership (user namespaces). Empty: identity.
	// An ID outside the map is an error.
	UIDMap, GIDMap []IDMap
	// NoChown keeps files owned by the caller (rootless, tests). Without
	// root, Apply never chowns anyway.
	NoChown bool
	// MaxSize bounds both the uncompressed tar stream and the total logical
	// size of its regular files (a sparse entry counts its full size), so
	// neither a decompression bomb nor a sparse claim can fill the disk or
	// burn CPU without end. 0 means no limit.
	MaxSize int64
}

// Apply unpacks the layer tar r (gzip, zstd or uncompressed, detected) into
// dir and returns its diffID (sha256 of the uncompressed stream, computed in
// the same pass) and the uncompressed size.
//
// Nothing is created, changed or removed outside dir, whatever the tar
// holds; see docs/design/layer.md, "Security". Errors about an entry are
// classified errdefs.ErrInvalid and name it. On error dir is left partly
// applied: the caller (a snapshotter) discards it.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (diffID digest.Digest, size int64, err error) {
	if opts.Whiteouts != OverlayWhiteouts && opts.Whiteouts != ApplyWhiteouts {
		return "", 0, errdefs.Invalidf("apply layer: whiteout mode not set")
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, fmt.Errorf("apply layer: open %s: %w", dir, err)
	}
	defer unix.Close(root)

	dr, _, err := Decompress(r)
	if err != nil {
		return "", 0, fmt.Errorf("apply layer: %w", err)
	}
	defer dr.Close()
	h := sha256.New()
	cr := &countingReader{ctx: ctx, r: dr, h: h, max: opts.MaxSize}

	a := &applier{
		ctx:   ctx,
		root:  root,
		opts:  opts,
		chown: os.Geteuid() == 0 && !opts.NoChown,
		zero:  make([]byte, copyChunk),
		buf:   make([]byte, copyChunk),
	}
	if opts.Whiteouts == ApplyWhiteouts {
		a.unpacked = map[string]bool{}
	}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, readErr(ctx, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return "", 0, err
		}
	}
	if err := a.finish(); err != nil {
		return "", 0, err
	}
	// The diffID covers the whole stream, trailing padding included.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return "", 0, readErr(ctx, err)
	}
	if a.skippedDevices > 0 || a.skippedXattrs > 0 || a.skippedOther > 0 {
		log.From(ctx).Warn("layer entries skipped", "devices", a.skippedDevices,
			"xattrs", a.skippedXattrs, "other", a.skippedOther)
	}
	return digest.NewDigest(digest.SHA256, h), cr.n, nil
}

// readErr classifies an error reading the layer stream: the caller's
// cancellation stays what it is, anything else is a bad layer.
func readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errdefs.ClassOf(err) != nil {
		return fmt.Errorf("apply layer: %w", err)
	}
	return errdefs.Invalidf("apply layer: read tar: %w", err)
}

// countingReader hashes and counts what is read through it, stops when
// ctx ends, and refuses a stream longer than max (if > 0): a small gzip or
// zstd input can inflate without bound.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.max > 0 && c.n > c.max {
		return n, errdefs.Invalidf("layer exceeds the size limit of %d bytes", c.max)
	}
	return n, err
}

const copyChunk = 128 << 10

// dirTime is what a directory still needs once the layer is applied:
// its mode (deferred so that a read-only directory can be filled first,
// even without root) and its times (creating children changes them).
type dirTime struct {
	rel          string
	mode         uint32
	atime, mtime time.Time
}

type applier struct {
	ctx   context.Context
	root  int
	opts  ApplyOptions
	chown bool

	dirTimes []dirTime
	// unpacked holds the paths this layer created (ApplyWhiteouts only): an
	// opaque whiteout keeps them and removes the rest.
	unpacked map[string]bool
	total    int64

	skippedDevices, skippedXattrs, skippedOther int
	zero, buf                                   []byte
}

// entryError classifies an error about one entry as invalid and names it.
func entryError(name string, format string, args ...any) error {
	return errdefs.Invalid(fmt.Errorf("layer entry %q: %w", name, fmt.Errorf(format, args...)))
}

// cleanName turns a tar name into a clean path relative to the layer root:
// a leading "/" is dropped (contained, as GNU tar and Docker do) and a name
// that climbs out through ".." is refused.
func cleanName(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", entryError(name, "invalid name")
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", entryError(name, "path escapes the layer")
	}
	return c, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := splitRel(rel)
	if (strings.HasPrefix(base, whiteoutMetaPrefix) && base != WhiteoutOpaque) ||
		(strings.HasPrefix(rel, whiteoutMetaPrefix) && rel != WhiteoutOpaque) {
		// aufs metadata (.wh..wh.aufs, the .wh..wh.plnk tree): not content.
		// Legacy aufs hardlinks into .wh..wh.plnk are not resolved.
		a.skippedOther++
		return nil
	}
	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(hdr, dir, base)
	}
	if a.unpacked != nil {
		a.unpacked[rel] = true
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return entryError(hdr.Name, "the layer root can only be a directory")
		}
		fd, err := openat2(a.root, ".", unix.O_RDONLY|unix.O_DIRECTORY, inRoot)
		if err != nil {
			return entryError(hdr.Name, "%w", err)
		}
		defer unix.Close(fd)
		if err := a.fileMeta(hdr, fd, false); err != nil {
			return err
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel, uint32(hdr.Mode) & 0o7777, hdr.AccessTime, hdr.ModTime})
		return nil
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont, // the reader turns '\x00' into TypeReg
		tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if !a.opts.AllowDevices {
			a.skippedDevices++
			log.From(a.ctx).Debug("layer device node skipped", "entry", hdr.Name)
			return nil
		}
	default:
		a.skippedOther++
		return nil
	}

	pfd, err := openDirIn(a.root, dir, true)
	if err != nil {
		return entryError(hdr.Name, "parent directory: %w", err)
	}
	defer unix.Close(pfd)

	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(hdr, rel, pfd, base)
	case tar.TypeLink:
		return a.hardlink(hdr, rel, pfd, base)
	}
	if err := removeAllAt(pfd, base); err != nil {
		return entryError(hdr.Name, "replace existing: %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return entryError(hdr.Name, "symlink: %w", err)
		}
		return a.atMeta(hdr, pfd, base, false)
	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode|0o600, int(dev)); err != nil {
			return entryError(hdr.Name, "mknod: %w", err)
		}
		return a.atMeta(hdr, pfd, base, true)
	default:
		return a.regular(hdr, r, pfd, base)
	}
}

func (a *applier) mkdir(hdr *tar.Header, rel string, pfd int, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := removeAllAt(pfd, base); err != nil {
			return entryError(hdr.Name, "replace existing: %w", err)
		}
		err = unix.ENOENT
	}
	if err == unix.ENOENT {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return entryError(hdr.Name, "mkdir: %w", err)
		}
	} else if err != nil {
		return entryError(hdr.Name, "%w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return entryError(hdr.Name, "%w", err)
	}
	defer unix.Close(fd)
	if err := a.fileMeta(hdr, fd, false); err != nil {
		return err
	}
	a.dirTimes = append(a.dirTimes, dirTime{rel, uint32(hdr.Mode) & 0o7777, hdr.AccessTime, hdr.ModTime})
	return nil
}

func (a *applier) regular(hdr *tar.Header, r io.Reader, pfd int, base string) error {
	if hdr.Size < 0 {
		return entryError(hdr.Name, "negative size")
	}
	a.total += hdr.Size
	if a.opts.MaxSize > 0 && a.total > a.opts.MaxSize {
		return entryError(hdr.Name, "layer exceeds the size limit of %d bytes", a.opts.MaxSize)
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return entryError(hdr.Name, "create: %w", err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	if err := a.copySparse(f, r, hdr.Size); err != nil {
		return entryError(hdr.Name, "write: %w", err)
	}
	if err := a.fileMeta(hdr, fd, true); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr.Name, "times: %w", err)
	}
	return nil
}

// copySparse copies size bytes from r to f, leaving runs of zeros as holes.
func (a *applier) copySparse(f *os.File, r io.Reader, size int64) error {
	var off int64
	holeAtEnd := false
	for off < size {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n := int64(len(a.buf))
		if size-off < n {
			n = size - off
		}
		b := a.buf[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		if bytes.Equal(b, a.zero[:n]) {
			if _, err := f.Seek(n, io.SeekCurrent); err != nil {
				return err
			}
			holeAtEnd = true
		} else {
			if _, err := f.Write(b); err != nil {
				return err
			}
			holeAtEnd = false
		}
		off += n
	}
	if holeAtEnd {
		return f.Truncate(size)
	}
	return nil
}

func (a *applier) hardlink(hdr *tar.Header, rel string, pfd int, base string) error {
	trel, err := cleanName(hdr.Linkname)
	if err != nil {
		return entryError(hdr.Name, "hardlink target %q escapes the layer", hdr.Linkname)
	}
	if trel == "." {
		return entryError(hdr.Name, "hardlink to the layer root")
	}
	if trel == rel {
		return nil
	}
	tdir, tbase := splitRel(trel)
	// The target must be reached without any symlink: a hardlink through a
	// symlinked parent is refused rather than resolved.
	tfd, err := openat2(a.root, tdir, unix.O_PATH|unix.O_DIRECTORY,
		unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		if err == unix.ELOOP || err == unix.EXDEV {
			return entryError(hdr.Name, "hardlink target %q is reached through a symlink", hdr.Linkname)
		}
		return entryError(hdr.Name, "hardlink target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr.Name, "hardlink target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return entryError(hdr.Name, "hardlink target %q is a directory", hdr.Linkname)
	}
	if err := removeAllAt(pfd, base); err != nil {
		return entryError(hdr.Name, "replace existing: %w", err)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return entryError(hdr.Name, "hardlink to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (a *applier) whiteout(hdr *tar.Header, dir, base string) error {
	if base == WhiteoutOpaque {
		dfd, err := openDirIn(a.root, dir, true)
		if err != nil {
			return entryError(hdr.Name, "opaque directory: %w", err)
		}
		defer unix.Close(dfd)
		if a.opts.Whiteouts == OverlayWhiteouts {
			if err := unix.Fsetxattr(dfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return entryError(hdr.Name, "mark opaque: %w", err)
			}
			return nil
		}
		if err := a.removeNotUnpacked(dfd, dir); err != nil {
			return entryError(hdr.Name, "opaque directory: %w", err)
		}
		return nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return entryError(hdr.Name, "invalid whiteout")
	}
	pfd, err := openDirIn(a.root, dir, a.opts.Whiteouts == OverlayWhiteouts)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil // nothing to hide
		}
		return entryError(hdr.Name, "whiteout parent: %w", err)
	}
	defer unix.Close(pfd)
	if err := removeAllAt(pfd, name); err != nil {
		return entryError(hdr.Name, "whiteout: %w", err)
	}
	if a.unpacked != nil {
		delete(a.unpacked, path.Join(dir, name))
	}
	if a.opts.Whiteouts == ApplyWhiteouts {
		return nil
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return entryError(hdr.Name, "whiteout device: %w", err)
	}
	if a.chown {
		uid, gid, err := a.ids(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr.Name, "chown: %w", err)
		}
	}
	return nil
}

// removeNotUnpacked removes every child of the directory dfd (at rel) that
// this layer did not create, recursing into the ones it did.
func (a *applier) removeNotUnpacked(dfd int, rel string) error {
	d, err := unix.Dup(dfd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(d), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(rel, n)
		if !a.unpacked[child] {
			if err := removeAllAt(dfd, n); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not a directory
		}
		err = a.removeNotUnpacked(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// ids maps the entry's owner to host IDs.
func (a *applier) ids(hdr *tar.Header) (int, int, error) {
	uid, err := mapID(a.opts.UIDMap, hdr.Uid)
	if err != nil {
		return 0, 0, entryError(hdr.Name, "uid: %w", err)
	}
	gid, err := mapID(a.opts.GIDMap, hdr.Gid)
	if err != nil {
		return 0, 0, entryError(hdr.Name, "gid: %w", err)
	}
	return uid, gid, nil
}

func mapID(m []IDMap, id int) (int, error) {
	if id < 0 || id > 1<<32-2 {
		return 0, fmt.Errorf("id %d out of range", id)
	}
	if len(m) == 0 {
		return id, nil
	}
	for _, e := range m {
		if uint64(id) >= uint64(e.ContainerID) && uint64(id) < uint64(e.ContainerID)+uint64(e.Size) {
			return int(uint64(e.HostID) + uint64(id) - uint64(e.ContainerID)), nil
		}
	}
	return 0, fmt.Errorf("id %d is not mapped", id)
}

// fileMeta sets owner, xattrs and (if chmod) mode on an open regular file
// or directory, in that order: chown clears setuid bits and capabilities.
func (a *applier) fileMeta(hdr *tar.Header, fd int, chmod bool) error {
	if a.chown {
		uid, gid, err := a.ids(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return entryError(hdr.Name, "chown: %w", err)
		}
	}
	for k, v := range xattrs(hdr) {
		if err := a.xattrErr(hdr, k, unix.Fsetxattr(fd, k, []byte(v), 0)); err != nil {
			return err
		}
	}
	if !chmod {
		return nil
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return entryError(hdr.Name, "chmod: %w", err)
	}
	return nil
}

// atMeta sets owner, xattrs, mode (unless a symlink) and times on name in
// pfd without following it.
func (a *applier) atMeta(hdr *tar.Header, pfd int, base string, chmod bool) error {
	if a.chown {
		uid, gid, err := a.ids(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr.Name, "chown: %w", err)
		}
	}
	for k, v := range xattrs(hdr) {
		if err := a.xattrErr(hdr, k, unix.Lsetxattr(procPath(pfd, base), k, []byte(v), 0)); err != nil {
			return err
		}
	}
	if chmod {
		// base was just created by mknod in this single-threaded pass: it is
		// not a symlink, so fchmodat's following does not matter.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return entryError(hdr.Name, "chmod: %w", err)
		}
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr.Name, "times: %w", err)
	}
	return nil
}

// xattrErr tolerates filesystems or callers that cannot hold an xattr
// (ENOTSUP, EPERM: counted and logged, as Docker does) and fails otherwise.
func (a *applier) xattrErr(hdr *tar.Header, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		a.skippedXattrs++
		log.From(a.ctx).Debug("layer xattr skipped", "entry", hdr.Name, "xattr", key, "error", err)
		return nil
	}
	return entryError(hdr.Name, "xattr %s: %w", key, err)
}

// xattrs returns the entry's extended attributes (PAX SCHILY.xattr.*),
// without overlayfs' private ones: a layer must not forge redirects,
// metacopy or opaque markers (opaque is expressed by .wh..wh..opq).
func xattrs(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || key == "" || isOverlayXattr(key) {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[key] = v
	}
	return m
}

func isOverlayXattr(k string) bool {
	return strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay.")
}

func timespecs(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{toTimespec(at), toTimespec(hdr.ModTime)}
}

func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// finish sets directories' modes and times, now that nothing more is
// created in them. Deepest last-seen first, so a parent's search permission
// is still there while its children are done.
func (a *applier) finish() error {
	for i := len(a.dirTimes) - 1; i >= 0; i-- {
		if err := a.finishDir(a.dirTimes[i]); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) finishDir(d dirTime) error {
	hdr := &tar.Header{Name: d.rel, AccessTime: d.atime, ModTime: d.mtime}
	pfd, base := a.root, "."
	if d.rel != "." {
		var dir string
		dir, base = splitRel(d.rel)
		fd, err := openDirIn(a.root, dir, false)
		if err != nil {
			return nil // removed or replaced later in the layer
		}
		defer unix.Close(fd)
		pfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // replaced later in the layer
	}
	// Not a symlink (just checked, and nothing else writes here meanwhile),
	// so fchmodat's following does not matter.
	if err := unix.Fchmodat(pfd, base, d.mode, 0); err != nil {
		return entryError(d.rel, "chmod: %w", err)
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(d.rel, "times: %w", err)
	}
	return nil
}
