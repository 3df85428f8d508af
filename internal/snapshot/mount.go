package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) to perform: Type is "overlay" or "bind", Options as
// in mount(8) ("ro", "rbind", "lowerdir=...").
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// maxMountData is the largest option string mount(2) accepts (one page, with
// its terminating NUL). Longer overlay option strings (many layers) are
// mounted with the new mount API, one lower directory at a time.
var maxMountData = os.Getpagesize() - 1

// MountAll performs mounts, in order, on target.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

// noVolatile records that this kernel's overlay lacks "volatile" (it came
// in Linux 5.10).
var noVolatile atomic.Bool

// MountVolatile is MountAll with every overlay mount given overlay's
// "volatile" option: the upper directory is never synced, neither at the
// container's fsyncs nor at unmount. It is for layers that are thrown away
// rather than kept across a host crash. Where the kernel lacks the option
// it mounts without it.
//
// A volatile mount leaves a marker in the work directory
// (work/incompat/volatile) that makes overlay refuse to mount that upper
// directory again, as the sign of a crash. The layers MountVolatile is for
// are removed after a crash, never mounted again; a marker it finds is
// from a clean unmount (a restart of the container), and it removes it.
func MountVolatile(mounts []Mount, target string) error {
	if noVolatile.Load() {
		return MountAll(mounts, target)
	}
	vm := make([]Mount, len(mounts))
	overlay := false
	for i, m := range mounts {
		if m.Type == "overlay" {
			overlay = true
			for _, o := range m.Options {
				if w, ok := strings.CutPrefix(o, "workdir="); ok {
					if err := os.RemoveAll(filepath.Join(w, "work", "incompat", "volatile")); err != nil {
						return fmt.Errorf("overlay work directory %s: %w", w, err)
					}
				}
			}
			m.Options = append(slices.Clip(m.Options), "volatile")
		}
		vm[i] = m
	}
	err := MountAll(vm, target)
	if overlay && errors.Is(err, unix.EINVAL) {
		// Perhaps an older kernel: try without the option.
		if MountAll(mounts, target) == nil {
			noVolatile.Store(true)
			return nil
		}
	}
	return err
}

func mountOne(m Mount, target string) error {
	switch m.Type {
	case "bind":
		var flags uintptr = unix.MS_BIND
		ro := false
		for _, o := range m.Options {
			switch o {
			case "rbind":
				flags |= unix.MS_REC
			case "ro":
				ro = true
			case "bind", "rw":
			default:
				return fmt.Errorf("bind mount of %s: unsupported option %q", m.Source, o)
			}
		}
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
		}
		if ro {
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s read-only: %w", target, err)
			}
		}
		return nil
	case "overlay":
		data := strings.Join(m.Options, ",")
		if len(data) <= maxMountData {
			if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
				return fmt.Errorf("mount overlay on %s: %w", target, err)
			}
			return nil
		}
		return mountOverlayFsconfig(m.Options, target)
	default:
		return fmt.Errorf("unsupported mount type %q", m.Type)
	}
}

// mountOverlayFsconfig mounts an overlay whose options do not fit in a page:
// fsconfig takes each lower directory separately ("lowerdir+", Linux 6.8+).
func mountOverlayFsconfig(options []string, target string) (err error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	for _, o := range options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			for _, d := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", d); err != nil {
					return fmt.Errorf("fsconfig lowerdir+ %s: %w", d, err)
				}
			}
		case "ro":
		default:
			if v == "" && !strings.Contains(o, "=") {
				err = unix.FsconfigSetFlag(fd, k)
			} else {
				err = unix.FsconfigSetString(fd, k, v)
			}
			if err != nil {
				return fmt.Errorf("fsconfig %s: %w", k, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("fsconfig create overlay: %w", err)
	}
	var attr int
	for _, o := range options {
		if o == "ro" {
			attr |= unix.MOUNT_ATTR_RDONLY
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move overlay mount to %s: %w", target, err)
	}
	return nil
}

// Unmount unmounts target. A target that is not mounted (or is gone) is not
// an error, so cleanup after a crash can call it again.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch err {
		case nil:
			// Stacked mounts on the same target: take them all.
			continue
		case unix.EINTR:
			continue
		case unix.EINVAL, unix.ENOENT:
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// OverlaySupported reports why overlay snapshots cannot be used under root
// (nil when they can), by mounting a tiny overlay there.
func OverlaySupported(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(root, "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(dir+"/"+d, 0o700); err != nil {
			return err
		}
	}
	data := fmt.Sprintf("lowerdir=%s/l1:%s/l2,upperdir=%s/upper,workdir=%s/work", dir, dir, dir, dir)
	if err := unix.Mount("overlay", dir+"/merged", "overlay", 0, data); err != nil {
		return fmt.Errorf("overlayfs is not usable under %s: %w", root, err)
	}
	return unix.Unmount(dir+"/merged", unix.MNT_DETACH)
}
