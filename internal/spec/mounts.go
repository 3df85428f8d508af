package spec

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultShmSize is Docker's /dev/shm size when ShmSize is 0.
const defaultShmSize = 64 << 20

// defaultMounts are Docker's default mounts, in Docker's order. /dev/shm
// comes separately (its size and kind depend on the IPC mode).
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
}

func defaultMaskedPaths() []string {
	return []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

func defaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// mounts assembles the container's mounts: Docker's defaults (less those a
// user mount replaces), /dev/shm, the /etc files, the init, tmpfs mounts and
// the caller's mounts, sorted so that parents come before children.
func mounts(in Input, host *container.HostConfig) ([]specs.Mount, error) {
	var user []specs.Mount

	if host.ShmSize < 0 {
		return nil, errdefs.Invalidf("invalid ShmSize %d: must be 0 or more", host.ShmSize)
	}
	if !host.IpcMode.IsNone() {
		if in.ShmPath != "" {
			user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.ShmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
		} else if host.IpcMode.IsHost() {
			user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
		} else {
			size := host.ShmSize
			if size == 0 {
				size = defaultShmSize
			}
			user = append(user, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", size)}})
		}
	}

	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", in.ResolvConfPath},
		{"/etc/hostname", in.HostnamePath},
		{"/etc/hosts", in.HostsPath},
	} {
		if f.src == "" {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if host.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		user = append(user, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}

	if useInit(host) && in.InitPath != "" {
		user = append(user, specs.Mount{Destination: InitDestination, Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})
	}

	dsts := make([]string, 0, len(host.Tmpfs))
	for d := range host.Tmpfs {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, d := range dsts {
		opts, err := tmpfsOptions(host.Tmpfs[d])
		if err != nil {
			return nil, errdefs.Invalidf("invalid Tmpfs %s:%s: %v", d, host.Tmpfs[d], err)
		}
		user = append(user, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	for _, m := range host.Mounts {
		if m.Type != mount.TypeTmpfs {
			continue // binds and volumes come resolved in in.Mounts
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if t := m.TmpfsOptions; t != nil {
			if t.SizeBytes < 0 {
				return nil, errdefs.Invalidf("invalid Mounts %s: tmpfs size %d must be 0 or more", m.Target, t.SizeBytes)
			}
			if t.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", t.SizeBytes))
			}
			if t.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", uint32(t.Mode)&0o7777))
			}
		}
		user = append(user, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	user = append(user, in.Mounts...)

	// Check destinations, and let a later user mount replace an earlier
	// one at the same place (the caller's mounts win over tmpfs and /etc).
	byDst := map[string]int{}
	var ms []specs.Mount
	for _, m := range user {
		if !path.IsAbs(m.Destination) {
			return nil, errdefs.Invalidf("invalid mount destination %q: must be an absolute path", m.Destination)
		}
		if strings.ContainsRune(m.Destination, 0) {
			return nil, errdefs.Invalidf("invalid mount destination %q", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		if m.Destination == "/" {
			return nil, errdefs.Invalidf("invalid mount destination %q: cannot mount over /", m.Destination)
		}
		m.Options = slices.Clone(m.Options)
		if i, ok := byDst[m.Destination]; ok {
			ms[i] = m
			continue
		}
		byDst[m.Destination] = len(ms)
		ms = append(ms, m)
	}

	_, userDev := byDst["/dev"]
	var out []specs.Mount
	for _, m := range defaultMounts() {
		if _, ok := byDst[m.Destination]; ok {
			continue
		}
		if userDev && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if host.ReadonlyRootfs && m.Destination != "/proc" && !strings.HasPrefix(m.Destination+"/", "/dev/") && !slices.Contains(m.Options, "ro") {
			m.Options = append(m.Options, "ro")
		}
		out = append(out, m)
	}
	out = append(out, ms...)
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Destination) < depth(out[j].Destination) })
	return out, nil
}

// depth counts a clean absolute path's components ("/" is 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// tmpfsFlags are the mount flags --tmpfs accepts (Docker's list).
var tmpfsFlags = []string{
	"defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"sync", "async", "dirsync", "remount", "mand", "nomand", "atime", "noatime",
	"diratime", "nodiratime", "bind", "rbind", "unbindable", "runbindable",
	"private", "rprivate", "shared", "rshared", "slave", "rslave", "relatime",
	"norelatime", "strictatime", "nostrictatime", "tmpcopyup",
}

// tmpfsData are the tmpfs data options --tmpfs accepts, before "=".
var tmpfsData = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"}

// tmpfsOptions merges --tmpfs options over Docker's defaults (noexec,
// nosuid, nodev): "exec" replaces "noexec" and so on.
func tmpfsOptions(s string) ([]string, error) {
	opts := []string{"noexec", "nosuid", "nodev"}
	if s == "" {
		return opts, nil
	}
	for _, o := range strings.Split(s, ",") {
		if o == "" {
			continue
		}
		k, v, hasValue := strings.Cut(o, "=")
		if hasValue {
			if !slices.Contains(tmpfsData, k) || v == "" || strings.ContainsAny(v, "\x00") {
				return nil, fmt.Errorf("unknown or empty tmpfs option %q", o)
			}
			opts = slices.DeleteFunc(opts, func(x string) bool { return strings.HasPrefix(x, k+"=") })
			opts = append(opts, o)
			continue
		}
		if !slices.Contains(tmpfsFlags, o) {
			return nil, fmt.Errorf("unknown tmpfs option %q", o)
		}
		opp := ""
		switch {
		case strings.HasPrefix(o, "no"):
			opp = strings.TrimPrefix(o, "no")
		default:
			opp = "no" + o
		}
		if o == "ro" {
			opp = "rw"
		} else if o == "rw" {
			opp = "ro"
		}
		opts = slices.DeleteFunc(opts, func(x string) bool { return x == opp || x == o })
		opts = append(opts, o)
	}
	return opts, nil
}

// cleanPaths cleans user-given masked or read-only paths.
func cleanPaths(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, path.Clean(p))
	}
	return out
}

func checkPaths(field string, ps []string) error {
	for _, p := range ps {
		if !path.IsAbs(p) || p == "/" || strings.ContainsRune(p, 0) {
			return errdefs.Invalidf("invalid %s entry %q: must be an absolute path below /", field, p)
		}
	}
	return nil
}
