package layer

import (
	"errors"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Every filesystem operation in this package is relative to a directory
// file descriptor. Paths from a tar are resolved with openat2 and
// RESOLVE_IN_ROOT, so "..", absolute symlinks and relative symlinks all
// stay inside the layer root, whatever earlier entries created; the last
// component is then handled with *at calls that never follow it.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2 retries EAGAIN (a concurrent rename somewhere in the tree) and
// EINTR.
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

// splitRel splits a clean relative path into its parent ("." at the top)
// and last component.
func splitRel(rel string) (dir, base string) {
	dir, base = path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return dir, base
}

// openDirIn opens rel (a directory) inside root, confined to root, creating
// missing directories (mode 0755) if create is set.
func openDirIn(root int, rel string, create bool) (int, error) {
	fd, err := openat2(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, inRoot)
	if err != unix.ENOENT || !create {
		return fd, err
	}
	cur := "."
	for _, comp := range strings.Split(rel, "/") {
		next := path.Join(cur, comp)
		fd, err := openat2(root, next, unix.O_PATH|unix.O_DIRECTORY, inRoot)
		if err == nil {
			unix.Close(fd)
			cur = next
			continue
		}
		if err != unix.ENOENT {
			return -1, err
		}
		pfd, err := openat2(root, cur, unix.O_PATH|unix.O_DIRECTORY, inRoot)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, comp, 0o755)
		unix.Close(pfd)
		if err == unix.EEXIST {
			// A dangling symlink: refused, as os.MkdirAll in Docker's
			// chroot refuses it.
			return -1, unix.ENOTDIR
		}
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return openat2(root, rel, unix.O_RDONLY|unix.O_DIRECTORY, inRoot)
}

// removeAllAt removes name (of any type, recursively) from the directory
// dirfd without following symlinks. A missing name is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err // not a directory after all: report the unlink error
	}
	if os.Geteuid() != 0 {
		unix.Fchmod(fd, 0o700) // our own read-only directory
	}
	d := os.NewFile(uintptr(fd), name)
	var errs []error
	for {
		names, rerr := d.Readdirnames(256)
		for _, n := range names {
			if e := removeAllAt(fd, n); e != nil {
				errs = append(errs, e)
			}
		}
		if rerr != nil || len(names) == 0 {
			break
		}
	}
	d.Close()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// procPath names name inside the directory dirfd through /proc/self/fd, for
// the l*xattr calls that have no *at form. The kernel resolves the fd link
// to the directory we hold; the last component is not followed by l* calls.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + itoa(dirfd) + "/" + name
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
