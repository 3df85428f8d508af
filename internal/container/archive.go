package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
)

// StatPath is HEAD /containers/{id}/archive: what p names in the
// container, the last component not followed (a symlink's LinkTarget is
// where it leads, resolved inside the container).
func (s *Service) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	c, root, err := s.openRoot(ctx, ref, true)
	if err != nil {
		return container.PathStat{}, err
	}
	defer root.Close()
	clean, trailing := cleanContainerPath(p)
	fd, err := resolvePath(root.fd, clean, trailing)
	if err != nil {
		return container.PathStat{}, pathError(c, p, err)
	}
	defer unix.Close(fd)
	return statFD(root.fd, fd, clean, entryName(p, clean))
}

// entryName is the name of the path's entry in an archive and its stat,
// as Docker's: the last component, or "." for a path ending in "/." (the
// docker CLI then copies the directory's contents).
func entryName(p, clean string) string {
	if strings.HasSuffix(p, "/.") || p == "." {
		return "."
	}
	if clean == "/" {
		return "/" // entries "/", "/bin", ...: the CLI renames the "" prefix
	}
	return path.Base(clean)
}

func statFD(root, fd int, clean, name string) (container.PathStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return container.PathStat{}, err
	}
	ps := container.PathStat{Name: name, Size: st.Size, Mode: fileMode(st.Mode), Mtime: time.Unix(st.Mtim.Unix()).UTC()}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := resolvedName(root, clean)
		if err != nil {
			return container.PathStat{}, err
		}
		ps.LinkTarget = target
	}
	return ps, nil
}

// fileMode converts a stat mode to Go's, as Docker's path stat carries it.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// ArchivePath is GET /containers/{id}/archive: the path's stat, then
// (once stat returned without error, through write) a tar of it whose
// entries are named from p's last component. The tar is written from
// directory fds and never follows a symlink, so a container that swaps
// files for symlinks while it is read cannot make it read host files.
func (s *Service) ArchivePath(ctx context.Context, ref, p string, start func(container.PathStat) (io.Writer, error)) error {
	c, root, err := s.openRoot(ctx, ref, true)
	if err != nil {
		return err
	}
	defer root.Close()
	clean, trailing := cleanContainerPath(p)
	fd, err := resolvePath(root.fd, clean, trailing)
	if err != nil {
		return pathError(c, p, err)
	}
	defer unix.Close(fd)
	name := entryName(p, clean)
	ps, err := statFD(root.fd, fd, clean, name)
	if err != nil {
		return err
	}
	w, err := start(ps)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	tr := &treeWriter{ctx: ctx, tw: tw, links: map[[2]uint64]string{}}
	if err := tr.add(fd, name); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	s.publish(c, events.ActionArchivePath)
	return nil
}

// treeWriter writes a tree to a tar from fds.
type treeWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, ino) of files with several links → first name
	// skip, when set, tells entries (by tar name) not to write.
	skip func(name string) bool
}

// add writes the entry fd (an O_PATH fd, not followed) names as name,
// and, for a directory, everything below it.
func (t *treeWriter) add(fd int, name string) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	hdr := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
	}
	var content *os.File
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Linkname = string(buf[:n])
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(hdr)
			}
			t.links[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		// Reopen the file we hold (through its fd, not its name: no
		// path is resolved again) for reading.
		rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		content = os.NewFile(uintptr(rfd), name)
		defer content.Close()
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not archived, as in Docker
	}
	if t.skip != nil && t.skip(hdr.Name) {
		return nil
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if content != nil {
		// The file may shrink or grow while read: write exactly Size bytes.
		n, err := io.Copy(t.tw, io.LimitReader(content, hdr.Size))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n < hdr.Size {
			if _, err := io.CopyN(t.tw, zeroReader{}, hdr.Size-n); err != nil {
				return err
			}
		}
		return nil
	}
	if hdr.Typeflag != tar.TypeDir {
		return nil
	}
	dfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if pseudoFS(dfd) {
		unix.Close(dfd)
		return nil // /proc, /sys and the like: the directory, not its contents
	}
	dir := os.NewFile(uintptr(dfd), name)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	slices.Sort(names)
	for _, n := range names {
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path.Join(name, n), err)
		}
		child := name + "/" + n // not path.Join: "./x" keeps its "./"
		if strings.HasSuffix(name, "/") {
			child = name + n
		}
		err = t.add(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// pseudoFS tells a kernel filesystem whose files are not data (a running
// container's /proc, /sys, cgroups, devpts, mqueue): archives hold the
// mount point, not what is below it, as Docker's (which never sees them).
func pseudoFS(fd int) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return false
	}
	switch st.Type {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC,
		unix.DEVPTS_SUPER_MAGIC, unix.DEBUGFS_MAGIC, unix.SECURITYFS_MAGIC,
		unix.TRACEFS_MAGIC, unix.BPF_FS_MAGIC, unix.PSTOREFS_MAGIC, unix.SELINUX_MAGIC, mqueueMagic:
		return true
	}
	return false
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ExtractOptions are PUT /containers/{id}/archive's parameters.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the other way round.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the tar's owners; otherwise everything is owned by
	// the container's root.
	CopyUIDGID bool
}

// ExtractArchive is PUT /containers/{id}/archive: the tar r unpacked into
// the directory p of the container. Entries are confined to that
// directory (internal/layer's safe apply). Whiteout entries (".wh.") are
// dropped, devices skipped.
func (s *Service) ExtractArchive(ctx context.Context, ref, p string, r io.Reader, opts ExtractOptions) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	if c.HostConfig != nil && c.HostConfig.ReadonlyRootfs {
		return errdefs.Forbidden(fmt.Errorf("container rootfs is marked read-only"))
	}
	c, root, err := s.openRoot(ctx, ref, true)
	if err != nil {
		return err
	}
	defer root.Close()
	clean, _ := cleanContainerPath(p)
	dfd, err := openat2(root.fd, relPath(clean), unix.O_RDONLY|unix.O_DIRECTORY, resolveInRoot)
	if errors.Is(err, unix.ENOTDIR) {
		return errdefs.Invalidf("extraction point is not a directory")
	}
	if err != nil {
		return pathError(c, p, err)
	}
	defer unix.Close(dfd)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- filterExtract(dfd, r, pw, opts) }()
	_, _, err = layer.Apply(ctx, "/proc/self/fd/"+strconv.Itoa(dfd), pr, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts})
	pr.CloseWithError(errors.New("extraction ended"))
	ferr := <-done
	if err != nil {
		if errdefs.ClassOf(ferr) != nil {
			err = ferr // the filter's refusal is what stopped it
		}
		return errdefs.Invalidf("extract to %s: %v", p, err)
	}
	if ferr != nil {
		return ferr
	}
	s.publish(c, events.ActionExtractToDir)
	return nil
}

// filterExtract copies the tar in to out, applying opts entry by entry
// against what dir holds, and dropping whiteout entries.
func filterExtract(dir int, in io.Reader, out *io.PipeWriter, opts ExtractOptions) (err error) {
	defer func() { out.CloseWithError(err) }()
	tr := tar.NewReader(in)
	tw := tar.NewWriter(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return errdefs.Invalidf("read archive: %v", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if strings.HasPrefix(path.Base(name), layer.WhiteoutPrefix) {
			continue
		}
		if !opts.CopyUIDGID {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		}
		if opts.NoOverwriteDirNonDir && name != "" {
			if fd, err := openat2(dir, name, unix.O_PATH|unix.O_NOFOLLOW, resolveInRoot); err == nil {
				var st unix.Stat_t
				serr := unix.Fstat(fd, &st)
				unix.Close(fd)
				isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
				if serr == nil && isDir && hdr.Typeflag != tar.TypeDir {
					return errdefs.Invalidf("cannot overwrite directory %q with non-directory %q", "/"+name, hdr.Name)
				}
				if serr == nil && !isDir && hdr.Typeflag == tar.TypeDir {
					return errdefs.Invalidf("cannot overwrite non-directory %q with directory %q", "/"+name, hdr.Name)
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// mqueueMagic is linux/magic.h's MQUEUE_MAGIC (x/sys/unix lacks it).
const mqueueMagic = 0x19800202
