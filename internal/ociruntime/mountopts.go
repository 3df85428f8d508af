package ociruntime

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlag is one mount(8) option: set or clear a flag.
type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlagNames = map[string]mountFlag{
	"defaults": {false, 0}, "ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"suid": {true, unix.MS_NOSUID}, "nosuid": {false, unix.MS_NOSUID},
	"dev": {true, unix.MS_NODEV}, "nodev": {false, unix.MS_NODEV},
	"exec": {true, unix.MS_NOEXEC}, "noexec": {false, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
}

var propagationNames = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits OCI mount options into mount(2) flags, the
// propagation changes to apply after the mount, and the filesystem data.
func parseMountOptions(opts []string) (flags uintptr, propagation []uintptr, data string, err error) {
	var rest []string
	for _, o := range opts {
		if f, ok := mountFlagNames[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationNames[o]; ok {
			propagation = append(propagation, p)
			continue
		}
		switch o {
		case "tmpcopyup", "rro", "rrw", "nosymfollow", "symfollow":
			// handled elsewhere or not supported; tolerated like runc
			if o == "rro" {
				flags |= unix.MS_RDONLY
			}
			continue
		case "idmap", "ridmap":
			return 0, nil, "", fmt.Errorf("option %q: idmapped mounts are not supported yet", o)
		}
		if o == "" || strings.ContainsAny(o, "\x00") {
			return 0, nil, "", fmt.Errorf("empty or malformed option %q", o)
		}
		rest = append(rest, o)
	}
	return flags, propagation, strings.Join(rest, ","), nil
}

// isBind says whether a spec mount is a bind mount.
func isBind(typ string, flags uintptr) bool {
	return typ == "bind" || flags&unix.MS_BIND != 0
}

// statfsToMountFlags converts statfs f_flags to the mount flags a bind
// remount must keep (the kernel refuses to clear locked ones).
func statfsToMountFlags(f int64) uintptr {
	var m uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME,
		unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			m |= ms
		}
	}
	return m
}
