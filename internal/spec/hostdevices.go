package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// skipDevDirs are the /dev subdirectories a privileged container does not
// get from the host: it has its own pts, shm and mqueue, and fd is a link
// to the caller's descriptors.
var skipDevDirs = map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true}

// HostDevices is the DeviceLookupFunc that reads the host: the device at
// hostPath, or every device below it when it is a directory (symlinks are
// not followed below the top). It is the I/O half of --device; Generate
// only calls it.
func HostDevices(hostPath string) ([]specs.LinuxDevice, error) {
	st, err := os.Stat(hostPath)
	if err != nil {
		return nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", hostPath, err)
	}
	if !st.IsDir() {
		d, ok, err := deviceAt(hostPath)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a device node", hostPath)
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(hostPath, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				return nil // a device may vanish, a dir may be closed to us
			}
			return err
		}
		if e.IsDir() {
			if p != hostPath && skipDevDirs[e.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		if p == "/dev/console" {
			return nil // the container gets its own console
		}
		d, ok, err := deviceAt(p)
		if err != nil || !ok {
			return nil
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices under %s: %w", hostPath, err)
	}
	return out, nil
}

// deviceAt describes the device node at p; ok is false when p is not one.
func deviceAt(p string) (specs.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return specs.LinuxDevice{}, false, fmt.Errorf("stat %s: %w", p, err)
	}
	var t string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		t = "c"
	case unix.S_IFBLK:
		t = "b"
	default:
		return specs.LinuxDevice{}, false, nil
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     p,
		Type:     t,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, true, nil
}
