package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
)

// A container's filesystem, as `docker cp`, export and commit see it, is
// reached through a directory fd on its root:
//
//   - running (or paused): /proc/<pid>/root of its init, which holds the
//     whole path space the process sees, volumes, binds and tmpfs included.
//     The fd is checked to be the container's own rootfs mount (same device
//     and inode as the mount the daemon made), so a pid reused after the
//     container exited cannot hand out another root (the host's).
//   - not running: its rootfs snapshot mounted for the time of the
//     operation, under the container's operation lock so that a start
//     cannot race it. Volumes and binds are not mounted then.
//
// Every path inside is resolved with openat2(RESOLVE_IN_ROOT): "..",
// absolute and relative symlinks all stay inside the root, even while the
// container swaps path components for symlinks (CVE-2018-15664's class).

// resolveInRoot is the openat2 resolve mask for container paths.
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// fsRoot is an open container root.
type fsRoot struct {
	fd      int
	release func()
}

func (r *fsRoot) Close() {
	unix.Close(r.fd)
	if r.release != nil {
		r.release()
	}
}

// openat2 opens p relative to dirfd, retrying EAGAIN and EINTR.
func openat2(dirfd int, p string, flags uint64, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 64 {
			continue
		}
		return fd, err
	}
}

// openRoot opens container c's root filesystem, for a stopped container
// with its volumes and binds bound in when withVolumes. Close releases it
// (and unmounts what it mounted).
func (s *Service) openRoot(ctx context.Context, ref string, withVolumes bool) (_ *Container, _ *fsRoot, err error) {
	c, err := s.index.get(ref)
	if err != nil {
		return nil, nil, err
	}
	unlock := s.ops.lock(c.ID)
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	if c, err = s.index.get(c.ID); err != nil {
		return nil, nil, err
	}
	switch c.State.Status {
	case StatusRemoving, StatusDead:
		return nil, nil, errdefs.Conflictf("container %s is marked for removal", c.ID)
	}
	if c.Running() {
		// The process runs on: the lock is not needed past the open.
		fd, err := s.openProcRoot(c)
		if err != nil {
			return nil, nil, err
		}
		unlock()
		return c, &fsRoot{fd: fd}, nil
	}
	rootfs := s.rootfs(c.ID)
	if err := s.cfg.Images.UnmountRootfs(ctx, c.ID, rootfs); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(rootfs, 0o711); err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		ctx := context.WithoutCancel(ctx)
		// The volumes bound below it go with it (lazily detached: nothing
		// is left reachable at the path once this returns).
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			log.From(ctx).Warn("detaching the rootfs mounted for a copy", "container", c.ID, "err", err)
			return
		}
		if err := s.cfg.Images.UnmountRootfs(ctx, c.ID, rootfs); err != nil {
			// Never remove the bundle through a live mount: that would
			// delete the container's files.
			log.From(ctx).Warn("unmounting the rootfs mounted for a copy", "container", c.ID, "err", err)
			return
		}
		os.Remove(rootfs)
		os.Remove(s.bundle(c.ID))
	}
	if err := s.cfg.Images.PrepareRootfs(ctx, c.ID, c.Image, rootfs, false); err != nil {
		cleanup()
		return nil, nil, err
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("open rootfs of container %s: %w", ShortID(c.ID), err)
	}
	if withVolumes {
		if err := bindMounts(fd, c.Mounts); err != nil {
			unix.Close(fd)
			cleanup()
			return nil, nil, fmt.Errorf("mount the volumes of container %s: %w", ShortID(c.ID), err)
		}
	}
	return c, &fsRoot{fd: fd, release: func() { cleanup(); unlock() }}, nil
}

// bindMounts binds a stopped container's volumes and binds at their
// destinations under the rootfs root (an fd), as Docker does for a copy,
// so they are part of its path space. Each destination is resolved in
// the root (RESOLVE_IN_ROOT, symlinks followed inside it) and mounted on
// through its fd, so a destination the container turned into a symlink
// cannot place the mount outside. A destination that does not exist is skipped: the container's
// filesystem is not changed. Read-only mounts are remounted read-only.
func bindMounts(root int, mounts []Mount) error {
	ms := append([]Mount(nil), mounts...)
	slices.SortStableFunc(ms, func(a, b Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	for _, m := range ms {
		if m.Source == "" || m.Destination == "" {
			continue
		}
		rel := relPath(path.Clean("/" + m.Destination))
		// Symlinks on the way (the last one too) are followed inside the
		// root, as runc resolves mount destinations: the fd is never a
		// symlink, which mount(2) through /proc/self/fd would follow from
		// the host's root.
		dfd, err := openat2(root, rel, unix.O_PATH, resolveInRoot)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.Destination, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(dfd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(dfd)
			continue
		}
		err = unix.Mount(m.Source, "/proc/self/fd/"+strconv.Itoa(dfd), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(dfd)
		if err != nil {
			return fmt.Errorf("bind %s at %s: %w", m.Source, m.Destination, err)
		}
		if !m.RW {
			// The fresh mount, reached through the path again.
			nfd, err := openat2(root, rel, unix.O_PATH, resolveInRoot)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Destination, err)
			}
			err = unix.Mount("", "/proc/self/fd/"+strconv.Itoa(nfd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, "")
			unix.Close(nfd)
			if err != nil {
				return fmt.Errorf("read-only %s: %w", m.Destination, err)
			}
		}
	}
	return nil
}

// openProcRoot opens /proc/<pid>/root of running container c and checks
// that it is the container's rootfs mount.
// Preconditions: the caller holds s.ops.lock(c.ID).
func (s *Service) openProcRoot(c *Container) (int, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(c.State.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, errdefs.Conflictf("container %s is not running: %v", c.ID, err)
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Stat(s.rootfs(c.ID), &want); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return -1, errdefs.Conflictf("container %s is not running (its process is gone)", c.ID)
	}
	return fd, nil
}

// cleanContainerPath makes p absolute and clean, keeping whether it ended
// in "/" or "/." (Docker: then the last component must be a directory and
// is followed if it is a symlink).
func cleanContainerPath(p string) (clean string, trailing bool) {
	trailing = strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || p == "."
	return path.Clean("/" + p), trailing
}

// pathError turns a resolution error into Docker's.
func pathError(c *Container, p string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errdefs.NotFoundf("Could not find the file %s in container %s", p, c.Name)
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.Invalidf("%s: not a directory", p)
	case errors.Is(err, unix.ELOOP):
		return errdefs.Invalidf("%s: too many levels of symbolic links", p)
	case errors.Is(err, unix.EXDEV):
		return errdefs.Invalidf("%s: path escapes the container's root", p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// resolvePath opens p inside root: O_PATH, the last component not followed
// unless follow.
func resolvePath(root int, p string, follow bool) (int, error) {
	flags := uint64(unix.O_PATH)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	return openat2(root, relPath(p), flags, resolveInRoot)
}

// relPath is clean absolute path p relative to the root ("." for "/").
func relPath(p string) string {
	if r := strings.TrimPrefix(p, "/"); r != "" {
		return r
	}
	return "."
}

// resolvedName is the absolute in-container path p resolves to, following
// every symlink within root (for a symlink's linkTarget in a path stat).
// It reads the tree component by component, never leaving root.
func resolvedName(root int, p string) (string, error) {
	var done []string
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, comp), "/")
		fd, err := openat2(root, cur, unix.O_PATH|unix.O_NOFOLLOW, resolveInRoot|unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			if err == unix.ENOENT && len(rest) == 0 {
				return "/" + cur, nil
			}
			return "", err
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if links++; links > 40 {
				unix.Close(fd)
				return "", unix.ELOOP
			}
			buf := make([]byte, unix.PathMax)
			var n int
			n, err = unix.Readlinkat(fd, "", buf)
			unix.Close(fd)
			if err != nil {
				return "", err
			}
			target := string(buf[:n])
			if strings.HasPrefix(target, "/") {
				done = nil
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		unix.Close(fd)
		if err != nil {
			return "", err
		}
		done = append(done, comp)
	}
	return "/" + strings.Join(done, "/"), nil
}
