package ociruntime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/mountinfo"
)

// Everything here runs in the init, in the container's new mount namespace,
// before pivot_root: the host's /proc is still at /proc, and every target
// inside the rootfs is opened with openat2(RESOLVE_IN_ROOT) and mounted on
// through its /proc/self/fd/N path, never through a joined string path, so
// a symlink in the rootfs cannot send a mount out of it (CVE-2021-30465).

func procFD(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// resolveIn opens path inside root, following symlinks as if root were /,
// refusing magic links (/proc/self/... tricks).
func resolveIn(root *os.File, path string, flags int) (*os.File, error) {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: "/" + strings.TrimPrefix(rel, "."), Err: err}
	}
	return os.NewFile(uintptr(fd), "/"+rel), nil
}

// mkdirAllIn creates the directories of path inside root (resolving each
// step inside root) and returns the last one, opened O_PATH.
func mkdirAllIn(root *os.File, path string) (*os.File, error) {
	clean := filepath.Clean("/" + path)
	if f, err := resolveIn(root, clean, unix.O_PATH|unix.O_DIRECTORY); err == nil || !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	parent, err := mkdirAllIn(root, filepath.Dir(clean))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	if err := unix.Mkdirat(int(parent.Fd()), filepath.Base(clean), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mkdir", Path: clean, Err: err}
	}
	return resolveIn(root, clean, unix.O_PATH|unix.O_DIRECTORY)
}

// openTarget opens (creating it if missing, as a directory or an empty
// file) the mount target path inside root.
func openTarget(root *os.File, path string, dir bool) (*os.File, error) {
	f, err := resolveIn(root, path, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	clean := filepath.Clean("/" + path)
	parent, err := mkdirAllIn(root, filepath.Dir(clean))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	name := filepath.Base(clean)
	if dir {
		err = unix.Mkdirat(int(parent.Fd()), name, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "create mount target", Path: clean, Err: err}
	}
	return resolveIn(root, clean, unix.O_PATH)
}

type rootfsSetup struct {
	cfg  *initConfig
	root *os.File // the rootfs after it is bound on itself
}

// prepareRootfs makes the rootfs a private mount tree of its own and
// performs the spec's mounts, devices, masked and readonly paths.
func prepareRootfs(cfg *initConfig) error {
	s := cfg.Spec
	if cfg.HostMountNS {
		// The host's mount tree: never change its propagation.
		if s.Linux.RootfsPropagation != "" {
			return errdefs.Invalidf("linux.rootfsPropagation: %q needs a mount namespace in linux.namespaces", s.Linux.RootfsPropagation)
		}
		if s.Root.Readonly {
			return errdefs.Invalidf("root.readonly: needs a mount namespace in linux.namespaces (berth does not remount the host's tree)")
		}
	} else {
		prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if p := s.Linux.RootfsPropagation; p != "" {
			prop = propagationNames[p]
		}
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: make / %s: %w", s.Linux.RootfsPropagation, err)
		}
		if err := makeParentPrivate(cfg.Rootfs); err != nil {
			return err
		}
		if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("root.path: bind %s on itself: %w", cfg.Rootfs, err)
		}
	}
	root, err := os.OpenFile(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root.path: %w", err)
	}
	defer root.Close()
	rs := &rootfsSetup{cfg: cfg, root: root}
	devIsTmpfs := false
	for i, m := range s.Mounts {
		if err := rs.mount(m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && !isBind(m.Type, mustFlags(m.Options)) {
			devIsTmpfs = true
		}
	}
	if err := rs.devices(devIsTmpfs); err != nil {
		return err
	}
	for i, p := range s.Linux.MaskedPaths {
		if err := rs.mask(p); err != nil {
			return fmt.Errorf("linux.maskedPaths[%d] (%s): %w", i, p, err)
		}
	}
	for i, p := range s.Linux.ReadonlyPaths {
		if err := rs.readonly(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths[%d] (%s): %w", i, p, err)
		}
	}
	return nil
}

func mustFlags(opts []string) uintptr {
	f, _, _, _ := parseMountOptions(opts)
	return f
}

// makeParentPrivate makes the mount holding the rootfs private when it is
// shared, as pivot_root and MS_MOVE refuse shared parents.
func makeParentPrivate(rootfs string) error {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	best, shared := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if (rootfs == mp || strings.HasPrefix(rootfs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best = mp
			shared = false
			for _, opt := range fields[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	if best != "" && shared {
		return unix.Mount("", best, "", unix.MS_PRIVATE, "")
	}
	return sc.Err()
}

func (rs *rootfsSetup) mount(m specs.Mount) error {
	flags, props, data, err := parseMountOptions(m.Options)
	if err != nil {
		return err
	}
	var target *os.File
	switch {
	case isBind(m.Type, flags):
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(rs.cfg.Bundle, src)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if target, err = openTarget(rs.root, m.Destination, fi.IsDir()); err != nil {
			return err
		}
		defer target.Close()
		if err := unix.Mount(src, procFD(target), "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			if err := rs.remount(m.Destination, rest); err != nil {
				return err
			}
		}
	case m.Type == "cgroup" || m.Type == "cgroup2":
		if target, err = openTarget(rs.root, m.Destination, true); err != nil {
			return err
		}
		defer target.Close()
		if err := rs.mountCgroup(target, m.Destination, m.Type, flags); err != nil {
			return err
		}
	default:
		if target, err = openTarget(rs.root, m.Destination, true); err != nil {
			return err
		}
		defer target.Close()
		err := unix.Mount(m.Source, procFD(target), m.Type, flags, data)
		if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) && rs.cfg.NewUserNS {
			// no new network namespace: sysfs cannot be mounted; bind the host's
			err = unix.Mount("/sys", procFD(target), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil && flags&unix.MS_RDONLY != 0 {
				err = rs.remount(m.Destination, flags)
			}
		}
		if err != nil {
			return err
		}
	}
	for _, p := range props {
		t, err := resolveIn(rs.root, m.Destination, unix.O_PATH)
		if err != nil {
			return err
		}
		err = unix.Mount("", procFD(t), "", p, "")
		t.Close()
		if err != nil {
			return fmt.Errorf("propagation: %w", err)
		}
	}
	return nil
}

// remount applies flags to the mount now at path, keeping the flags the
// kernel locks (nosuid, nodev, noexec, atime in a user namespace).
func (rs *rootfsSetup) remount(path string, flags uintptr) error {
	t, err := resolveIn(rs.root, path, unix.O_PATH)
	if err != nil {
		return err
	}
	defer t.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(t.Fd()), &st); err != nil {
		return err
	}
	locked := statfsToMountFlags(st.Flags) &^ unix.MS_RDONLY
	if err := unix.Mount("", procFD(t), "", unix.MS_REMOUNT|unix.MS_BIND|flags|locked, ""); err != nil {
		return fmt.Errorf("remount: %w", err)
	}
	return nil
}

// mountCgroup mounts the cgroup filesystem(s) at target: cgroup2 where the
// host is unified, else a tmpfs holding one mount per v1 hierarchy.
func (rs *rootfsSetup) mountCgroup(target *os.File, dest, typ string, flags uintptr) error {
	flags |= unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	hier, err := hostCgroupV1Hierarchies()
	if err != nil {
		return err
	}
	if typ == "cgroup2" || len(hier) == 0 {
		return unix.Mount("cgroup2", procFD(target), "cgroup2", flags, "")
	}
	if err := unix.Mount("tmpfs", procFD(target), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	dir, err := resolveIn(rs.root, dest, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer dir.Close()
	// Without a cgroup namespace a fresh mount would show the host's whole
	// tree: bind the init's own cgroup of each hierarchy instead, as runc.
	var own []ownCgroup
	if !rs.cfg.NewCgroup {
		if own, err = readOwnCgroups(); err != nil {
			return err
		}
	}
	for _, h := range hier {
		sub, err := openTarget(dir, h.name, true)
		if err != nil {
			return err
		}
		p, ok := h.ownPath(own)
		if ok && h.v2 && p == "/" {
			// The hybrid layout's cgroup2 twin, which berth does not join:
			// the host's root is all a mount would show.
			sub.Close()
			continue
		}
		if ok {
			src := filepath.Join("/sys/fs/cgroup", h.name, filepath.Clean("/"+p))
			err = unix.Mount(src, procFD(sub), "", unix.MS_BIND|unix.MS_REC, "")
			sub.Close()
			if err != nil {
				return fmt.Errorf("bind cgroup %s: %w", src, err)
			}
			// Reopen: the old fd is the directory under the new mount.
			if sub, err = openTarget(dir, h.name, true); err != nil {
				return err
			}
			err = unix.Mount("", procFD(sub), "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
			sub.Close()
			if err != nil {
				return fmt.Errorf("remount cgroup %s: %w", src, err)
			}
			for _, c := range strings.Split(h.name, ",") {
				if c != h.name {
					unix.Symlinkat(h.name, int(dir.Fd()), c)
				}
			}
			continue
		}
		fstype, data := "cgroup", h.opts
		if h.v2 {
			fstype, data = "cgroup2", ""
		}
		err = unix.Mount("cgroup", procFD(sub), fstype, flags, data)
		sub.Close()
		if err != nil {
			return fmt.Errorf("mount cgroup %s: %w", h.name, err)
		}
		for _, c := range strings.Split(h.name, ",") {
			if c != h.name {
				unix.Symlinkat(h.name, int(dir.Fd()), c)
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", procFD(dir), "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, "mode=755")
	}
	return nil
}

type cgroupHier struct {
	name, opts string
	v2         bool
}

// ownCgroup is one line of /proc/self/cgroup.
type ownCgroup struct {
	controllers []string // empty for cgroup2
	path        string
}

func readOwnCgroups() ([]ownCgroup, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	return parseOwnCgroups(string(b)), nil
}

func parseOwnCgroups(text string) []ownCgroup {
	var out []ownCgroup
	for _, l := range strings.Split(text, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var ctrls []string
		if f[1] != "" {
			ctrls = strings.Split(f[1], ",")
		}
		out = append(out, ownCgroup{controllers: ctrls, path: f[2]})
	}
	return out
}

// ownPath finds the hierarchy's line in own: the cgroup2 one ("0::") for
// a v2 hierarchy, else the one whose controllers are all in its options.
func (h cgroupHier) ownPath(own []ownCgroup) (string, bool) {
	opts := strings.Split(h.opts, ",")
	for _, o := range own {
		if h.v2 != (len(o.controllers) == 0) {
			continue
		}
		match := true
		for _, c := range o.controllers {
			if indexOf(opts, c) < 0 {
				match = false
				break
			}
		}
		if match {
			return o.path, true
		}
	}
	return "", false
}

func hostCgroupV1Hierarchies() ([]cgroupHier, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupHier
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := indexOf(fields, "-")
		if i < 0 || i+3 >= len(fields) || !strings.HasPrefix(fields[4], "/sys/fs/cgroup/") {
			continue
		}
		name := strings.TrimPrefix(fields[4], "/sys/fs/cgroup/")
		switch fields[i+1] {
		case "cgroup":
			var keep []string
			for _, o := range strings.Split(fields[i+3], ",") {
				if o != "rw" && o != "ro" {
					keep = append(keep, o)
				}
			}
			out = append(out, cgroupHier{name: name, opts: strings.Join(keep, ",")})
		case "cgroup2":
			out = append(out, cgroupHier{name: name, v2: true})
		}
	}
	return out, sc.Err()
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// devices creates the default devices (when /dev is the container's own
// tmpfs), the spec's devices, and /dev's standard symlinks.
func (rs *rootfsSetup) devices(devIsTmpfs bool) error {
	var list []specs.LinuxDevice
	if devIsTmpfs {
		list = append(list, defaultDevices...)
	}
	list = append(list, rs.cfg.Spec.Linux.Devices...)
	mode := os.FileMode(0o666)
	for i, d := range list {
		if d.FileMode == nil {
			d.FileMode = &mode
		}
		if err := rs.device(d); err != nil {
			field := "default device"
			if j := i - (len(list) - len(rs.cfg.Spec.Linux.Devices)); j >= 0 {
				field = fmt.Sprintf("linux.devices[%d]", j)
			}
			return fmt.Errorf("%s (%s): %w", field, d.Path, err)
		}
	}
	if !devIsTmpfs {
		return nil
	}
	dev, err := mkdirAllIn(rs.root, "/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

func (rs *rootfsSetup) device(d specs.LinuxDevice) error {
	clean := filepath.Clean(d.Path)
	if !strings.HasPrefix(clean, "/dev/") {
		return errdefs.Invalidf("devices must be under /dev")
	}
	parent, err := mkdirAllIn(rs.root, filepath.Dir(clean))
	if err != nil {
		return err
	}
	defer parent.Close()
	name := filepath.Base(clean)
	pfd := int(parent.Fd())
	typ := map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}[d.Type]
	perm := uint32(d.FileMode.Perm())
	if !rs.cfg.NewUserNS {
		unix.Unlinkat(pfd, name, 0)
		err := unix.Mknodat(pfd, name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if err == nil {
			uid, gid := 0, 0
			if d.UID != nil {
				uid = int(*d.UID)
			}
			if d.GID != nil {
				gid = int(*d.GID)
			}
			if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			return nil
		}
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mknod: %w", err)
		}
	}
	// In a user namespace mknod is refused: bind the host's node instead.
	target, err := openTarget(rs.root, clean, false)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Mount(d.Path, procFD(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind host device: %w", err)
	}
	return nil
}

// mask hides path: /dev/null over a file, an empty read-only tmpfs over a
// directory. A missing path needs no mask.
func (rs *rootfsSetup) mask(path string) error {
	t, err := resolveIn(rs.root, path, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer t.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(t.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", procFD(t), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0k,mode=755")
	}
	return unix.Mount("/dev/null", procFD(t), "", unix.MS_BIND, "")
}

// readonly binds path on itself read-only.
func (rs *rootfsSetup) readonly(path string) error {
	t, err := resolveIn(rs.root, path, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	err = unix.Mount(procFD(t), procFD(t), "", unix.MS_BIND|unix.MS_REC, "")
	t.Close()
	if err != nil {
		return err
	}
	return rs.remount(path, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}

// enterRootfs makes the rootfs the process's root: pivot_root, or MS_MOVE
// and chroot where pivot_root cannot work (noPivot, or a ramfs root).
func enterRootfs(cfg *initConfig) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err == nil && (st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC && isInitramfs()) {
		cfg.NoPivot = true
	}
	if err := unix.Chdir(cfg.Rootfs); err != nil {
		return fmt.Errorf("root.path: %w", err)
	}
	if cfg.HostMountNS {
		// pivot_root or MS_MOVE would change the host's root: chroot only.
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	if cfg.NoPivot {
		if err := unix.Mount(cfg.Rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move the rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make the old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	return unix.Chdir("/")
}

func isInitramfs() bool {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == "/" {
			return strings.Contains(l, " - rootfs ")
		}
	}
	return false
}

// sharesHostMountNS says whether a container has no mount namespace of
// its own (new or joined): its mounts are in the host's tree.
func sharesHostMountNS(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			return false
		}
	}
	return true
}

// unmountUnder detaches every mount at or below dir, deepest first: what
// a container that shared the host's mount namespace left (proc, sys,
// dev, masked paths). It is best effort; failures are logged.
func unmountUnder(ctx context.Context, dir string) {
	mps, err := mountinfo.Under(filepath.Clean(dir), false)
	if err != nil {
		return
	}
	for _, mp := range mps { // deepest first
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			log.From(ctx).Warn("unmount a mount the container left in the host's mount namespace", "path", mp, "err", err)
		}
	}
}
