// Package spec turns a Docker container's configuration into an OCI runtime
// spec, as a pure function of its input (the image's user database and the
// device lookup are the only host queries, both supplied by the caller).
package spec

import (
	"fmt"
	"maps"
	"path"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCgroupParent is where containers' cgroups go unless told otherwise.
const DefaultCgroupParent = "/berth"

// DefaultPathEnv is the PATH a container gets when neither it nor its image
// sets one.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitDestination is where --init's binary is bound inside the container.
const InitDestination = "/sbin/docker-init"

// DeviceLookupFunc returns the device nodes at a host path: the device itself
// when path is a device, every device below it when path is a directory. The
// returned devices carry their host paths. Generate calls it only for
// --device, --privileged and per-device blkio limits.
type DeviceLookupFunc func(hostPath string) ([]specs.LinuxDevice, error)

// Input is everything Generate needs to know about a container.
type Input struct {
	// ID is the container's full ID.
	ID string
	// Config and Host are the container's configuration, as the Engine
	// API's create request gave them (nil reads as empty), not yet merged
	// with the image's.
	Config *container.Config
	Host   *container.HostConfig
	// Image is the image's configuration (Env, User, WorkingDir...).
	Image container.Config
	// Path and Args are the process to run, with Docker's entrypoint/cmd
	// rules already applied.
	Path string
	Args []string
	// RootfsPath is the host path of the mounted root filesystem.
	RootfsPath string
	// Mounts are the volumes and binds, resolved by the caller. They
	// override default mounts at the same destination. Tmpfs mounts from
	// HostConfig.Tmpfs and HostConfig.Mounts (type tmpfs) are made here.
	Mounts []specs.Mount
	// Users is the image's /etc/passwd and /etc/group (nil: none, so
	// only numeric users resolve). RootfsUserDB reads them safely.
	Users UserDB
	// NetNSPath is a network namespace to join: the one the network layer
	// prepared, or another container's for --network container:<id>
	// (required then). Empty means a new namespace. Ignored for --network
	// host.
	NetNSPath string
	// PidNSPath and IPCNSPath are other containers' namespaces to join for
	// --pid/--ipc container:<id> (required then).
	PidNSPath string
	IPCNSPath string
	// ShmPath, when set, is a host directory bound at /dev/shm instead of
	// a private tmpfs (--ipc shareable, container:<id>).
	ShmPath string
	// HostsPath, ResolvConfPath and HostnamePath are bound at /etc/hosts,
	// /etc/resolv.conf and /etc/hostname when set.
	HostsPath, ResolvConfPath, HostnamePath string
	// CgroupParent is the parent cgroup (default DefaultCgroupParent);
	// HostConfig.CgroupParent overrides it.
	CgroupParent string
	// CgroupNS asks for a private cgroup namespace when
	// HostConfig.CgroupnsMode is empty (Docker's default on cgroup v2).
	CgroupNS bool
	// SeccompProfile is a custom profile in Docker's JSON format. A
	// "seccomp=" security option overrides it.
	SeccompProfile []byte
	// InitPath is the host path of the init bound at InitDestination when
	// HostConfig.Init is true.
	InitPath string
	// LookupDevice resolves --device host paths (nil: --device refused).
	// HostDevices is the real one.
	LookupDevice DeviceLookupFunc
	// HostCapabilities are the capabilities the runtime itself holds (its
	// bounding set; HostCapabilities() reads them). --privileged and
	// --cap-add ALL get these rather than every capability Linux knows, as
	// Docker gives what the host has: asking for more fails at capset.
	// Nil means every capability.
	HostCapabilities []string
}

// Generate makes the OCI runtime spec of a container. Every error it returns
// for a bad configuration is errdefs.ErrInvalid and names the field and
// value at fault.
func Generate(in Input) (*specs.Spec, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	host := in.Host
	if host == nil {
		host = &container.HostConfig{}
	}
	if in.ID == "" {
		return nil, errdefs.Invalidf("container ID is empty")
	}
	if in.Path == "" {
		return nil, errdefs.Invalidf("no command specified")
	}
	if in.RootfsPath == "" {
		return nil, errdefs.Invalidf("root filesystem path is empty")
	}

	sec, err := parseSecurityOpts(host.SecurityOpt)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.RootfsPath, Readonly: host.ReadonlyRootfs},
		Process: &specs.Process{Terminal: cfg.Tty},
		Linux:   &specs.Linux{},
	}
	if len(host.Annotations) > 0 {
		s.Annotations = maps.Clone(host.Annotations)
	}

	ns, err := namespaces(in, host)
	if err != nil {
		return nil, err
	}
	s.Linux.Namespaces = ns
	utsPrivate := hasNS(ns, specs.UTSNamespace)
	netPrivate := hasNS(ns, specs.NetworkNamespace)
	ipcPrivate := hasNS(ns, specs.IPCNamespace)

	hostname := cfg.Hostname
	if utsPrivate {
		if hostname == "" && !host.NetworkMode.IsHost() {
			hostname = shortID(in.ID)
		}
		if err := validHostname(hostname); err != nil {
			return nil, err
		}
		s.Hostname = hostname
		s.Domainname = cfg.Domainname
		if err := validHostname(s.Domainname); err != nil {
			return nil, err
		}
	} else {
		hostname = ""
	}

	if err := process(s.Process, in, cfg, host, hostname, sec); err != nil {
		return nil, err
	}

	ms, err := mounts(in, host)
	if err != nil {
		return nil, err
	}
	s.Mounts = ms

	if !host.Privileged && !sec.unconfinedPaths {
		s.Linux.MaskedPaths = defaultMaskedPaths()
		if host.MaskedPaths != nil {
			s.Linux.MaskedPaths = cleanPaths(host.MaskedPaths)
		}
		s.Linux.ReadonlyPaths = defaultReadonlyPaths()
		if host.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = cleanPaths(host.ReadonlyPaths)
		}
		if err := checkPaths("MaskedPaths", s.Linux.MaskedPaths); err != nil {
			return nil, err
		}
		if err := checkPaths("ReadonlyPaths", s.Linux.ReadonlyPaths); err != nil {
			return nil, err
		}
	}

	if s.Linux.Sysctl, err = sysctls(host.Sysctls, netPrivate, ipcPrivate); err != nil {
		return nil, err
	}
	if netPrivate && !strings.HasPrefix(string(host.NetworkMode), "container:") {
		s.Linux.Sysctl = withNetDefaults(s.Linux.Sysctl)
	}
	if s.Linux.CgroupsPath, err = cgroupsPath(in, host); err != nil {
		return nil, err
	}
	if s.Linux.Resources, err = resources(in, host); err != nil {
		return nil, err
	}
	if s.Linux.Devices, s.Linux.Resources.Devices, err = devices(in, host); err != nil {
		return nil, err
	}

	for i := range s.Mounts {
		m := &s.Mounts[i]
		switch {
		case host.Privileged && m.Destination == "/sys" && m.Type == "sysfs" && !host.ReadonlyRootfs:
			m.Options = removeOpt(m.Options, "ro")
		case (host.Privileged || sec.writableCgroups) && m.Type == "cgroup" && !host.ReadonlyRootfs:
			m.Options = removeOpt(m.Options, "ro")
		}
	}

	if s.Linux.Seccomp, err = seccompFor(s, in, host, sec); err != nil {
		return nil, err
	}
	return s, nil
}

// shortID is Docker's 12-character container ID.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// validHostname refuses names the kernel would refuse (over 64 bytes) and
// ones that could break /etc/hosts or the environment.
func validHostname(h string) error {
	if len(h) > 64 {
		return errdefs.Invalidf("invalid hostname %q: longer than 64 characters", h)
	}
	if strings.ContainsAny(h, "\x00\n\r\t /") {
		return errdefs.Invalidf("invalid hostname %q", h)
	}
	return nil
}

func hasNS(ns []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, n := range ns {
		if n.Type == t {
			return true
		}
	}
	return false
}

// namespaces decides which namespaces the container gets and which it joins.
func namespaces(in Input, host *container.HostConfig) ([]specs.LinuxNamespace, error) {
	var ns []specs.LinuxNamespace
	add := func(t specs.LinuxNamespaceType, p string) {
		ns = append(ns, specs.LinuxNamespace{Type: t, Path: p})
	}
	switch pm := host.PidMode; {
	case pm.IsHost():
	case pm.IsContainer():
		if in.PidNSPath == "" {
			return nil, errdefs.Invalidf("invalid PidMode %q: no namespace path for the container", pm)
		}
		add(specs.PIDNamespace, in.PidNSPath)
	case pm == "":
		add(specs.PIDNamespace, "")
	default:
		return nil, errdefs.Invalidf("invalid PidMode %q", pm)
	}
	switch im := host.IpcMode; {
	case im.IsHost():
	case im.IsContainer():
		if in.IPCNSPath == "" {
			return nil, errdefs.Invalidf("invalid IpcMode %q: no namespace path for the container", im)
		}
		add(specs.IPCNamespace, in.IPCNSPath)
	case im.IsEmpty() || im.IsPrivate() || im.IsShareable() || im.IsNone():
		add(specs.IPCNamespace, "")
	default:
		return nil, errdefs.Invalidf("invalid IpcMode %q", im)
	}
	switch um := host.UTSMode; {
	case um.IsHost():
	case um == "":
		add(specs.UTSNamespace, "")
	default:
		return nil, errdefs.Invalidf("invalid UTSMode %q", um)
	}
	add(specs.MountNamespace, "")
	switch nm := host.NetworkMode; {
	case nm.IsHost():
	case nm.IsContainer():
		if in.NetNSPath == "" {
			return nil, errdefs.Invalidf("invalid NetworkMode %q: no namespace path for the container", nm)
		}
		add(specs.NetworkNamespace, in.NetNSPath)
	case nm.IsNone():
		add(specs.NetworkNamespace, "")
	default:
		add(specs.NetworkNamespace, in.NetNSPath)
	}
	switch cm := host.CgroupnsMode; {
	case cm.IsPrivate():
		add(specs.CgroupNamespace, "")
	case cm.IsHost():
	case cm.IsEmpty():
		if in.CgroupNS {
			add(specs.CgroupNamespace, "")
		}
	default:
		return nil, errdefs.Invalidf("invalid CgroupnsMode %q", cm)
	}
	if um := host.UsernsMode; um != "" && um != "host" {
		return nil, errdefs.NotImplemented(fmt.Errorf("UsernsMode %q: user namespace remapping is not supported", um))
	}
	return ns, nil
}

// cgroupsPath is parent/ID, refusing parents that climb out of the
// hierarchy.
func cgroupsPath(in Input, host *container.HostConfig) (string, error) {
	parent, field := host.CgroupParent, "CgroupParent"
	if parent == "" {
		parent, field = in.CgroupParent, "daemon cgroup parent"
	}
	if parent == "" {
		parent = DefaultCgroupParent
	}
	for _, c := range strings.Split(parent, "/") {
		if c == ".." {
			return "", errdefs.Invalidf("invalid %s %q: must not contain ..", field, parent)
		}
	}
	if strings.ContainsAny(parent, "\x00\n:") {
		return "", errdefs.Invalidf("invalid %s %q", field, parent)
	}
	if strings.ContainsAny(in.ID, "/\x00\n") || in.ID == "." || in.ID == ".." {
		return "", errdefs.Invalidf("invalid container ID %q", in.ID)
	}
	return path.Join("/", parent, in.ID), nil
}

// securityOpts is what --security-opt said.
type securityOpts struct {
	noNewPrivileges bool
	seccompSet      bool   // a seccomp= option was given
	seccomp         string // "unconfined", "builtin" or profile JSON
	unconfinedPaths bool   // systempaths=unconfined
	writableCgroups bool
}

// parseSecurityOpts reads HostConfig.SecurityOpt as Docker does: key=value
// (or the old key:value); label and apparmor are accepted and ignored.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var so securityOpts
	for _, o := range opts {
		if o == "no-new-privileges" {
			so.noNewPrivileges = true
			continue
		}
		if o == "disable" { // legacy "label:disable"
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok {
			return so, errdefs.Invalidf("invalid --security-opt 1: %q", o)
		}
		switch k {
		case "label", "apparmor":
			// No SELinux or AppArmor support: accepted and ignored.
		case "seccomp":
			so.seccompSet, so.seccomp = true, v
		case "no-new-privileges":
			b, err := parseBool(v)
			if err != nil {
				return so, errdefs.Invalidf("invalid --security-opt 2: %q", o)
			}
			so.noNewPrivileges = b
		case "systempaths":
			if v != "unconfined" {
				return so, errdefs.Invalidf("invalid --security-opt 2: %q", o)
			}
			so.unconfinedPaths = true
		case "writable-cgroups":
			b, err := parseBool(v)
			if err != nil {
				return so, errdefs.Invalidf("invalid --security-opt 2: %q", o)
			}
			so.writableCgroups = b
		default:
			return so, errdefs.Invalidf("invalid --security-opt 2: %q", o)
		}
	}
	return so, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true":
		return true, nil
	case "0", "f", "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", s)
}

func removeOpt(opts []string, o string) []string {
	out := make([]string, 0, len(opts))
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}
