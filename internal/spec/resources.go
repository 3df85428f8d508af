package spec

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Docker's limits on resource values.
const (
	minMemory      = 6 << 20 // "Minimum memory limit allowed is 6MB"
	minCPUShares   = 2
	maxCPUShares   = 262144
	defaultCFSPer  = 100000
	minCFSPeriod   = 1000
	maxCFSPeriod   = 1000000
	minCFSQuota    = 1000
	minBlkioWeight = 10
	maxBlkioWeight = 1000
	maxCPUIndex    = 8192
)

// resources turns HostConfig.Resources into cgroup settings.
func resources(in Input, host *container.HostConfig) (*specs.LinuxResources, error) {
	r := host.Resources
	out := &specs.LinuxResources{}

	// memory
	if r.Memory < 0 {
		return nil, errdefs.Invalidf("invalid Memory %d: must be 0 or more", r.Memory)
	}
	if r.Memory > 0 && r.Memory < minMemory {
		return nil, errdefs.Invalidf("invalid Memory %d: minimum memory limit allowed is 6MB", r.Memory)
	}
	swap := r.MemorySwap
	if r.Memory > 0 && swap == 0 {
		swap = 2 * r.Memory // Docker's default: as much swap as memory
	}
	if swap != 0 && r.Memory == 0 {
		return nil, errdefs.Invalidf("invalid MemorySwap %d: you should always set the Memory limit when using Memoryswap limit", swap)
	}
	if swap < -1 || (swap > 0 && swap < r.Memory) {
		return nil, errdefs.Invalidf("invalid MemorySwap %d: minimum memoryswap limit should be larger than memory limit %d", swap, r.Memory)
	}
	if r.MemoryReservation < 0 || (r.Memory > 0 && r.MemoryReservation > r.Memory) {
		return nil, errdefs.Invalidf("invalid MemoryReservation %d: must be between 0 and the memory limit %d", r.MemoryReservation, r.Memory)
	}
	var mem specs.LinuxMemory
	memSet := false
	if r.Memory > 0 {
		mem.Limit, memSet = ptr(r.Memory), true
	}
	if swap != 0 {
		mem.Swap, memSet = ptr(swap), true
	}
	if r.MemoryReservation > 0 {
		mem.Reservation, memSet = ptr(r.MemoryReservation), true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		if *r.MemorySwappiness < 0 || *r.MemorySwappiness > 100 {
			return nil, errdefs.Invalidf("invalid MemorySwappiness %d: must be between 0 and 100", *r.MemorySwappiness)
		}
		mem.Swappiness, memSet = ptr(uint64(*r.MemorySwappiness)), true
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		mem.DisableOOMKiller, memSet = ptr(true), true
	}
	if memSet {
		out.Memory = &mem
	}

	// cpu
	var cpu specs.LinuxCPU
	cpuSet := false
	if r.CPUShares < 0 {
		return nil, errdefs.Invalidf("invalid CpuShares %d: must be 0 or more", r.CPUShares)
	}
	if r.CPUShares > 0 {
		s := min(max(r.CPUShares, minCPUShares), maxCPUShares)
		cpu.Shares, cpuSet = ptr(uint64(s)), true
	}
	if r.NanoCPUs < 0 {
		return nil, errdefs.Invalidf("invalid NanoCpus %d: must be 0 or more", r.NanoCPUs)
	}
	if r.NanoCPUs > 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
		return nil, errdefs.Invalidf("invalid NanoCpus %d: conflicting options: Nano CPUs cannot be set with CPU period or quota", r.NanoCPUs)
	}
	if r.NanoCPUs > 0 {
		q := r.NanoCPUs * defaultCFSPer / 1e9
		if q < minCFSQuota {
			return nil, errdefs.Invalidf("invalid NanoCpus %d: below the minimum of 0.01 CPUs", r.NanoCPUs)
		}
		cpu.Quota, cpu.Period, cpuSet = ptr(q), ptr(uint64(defaultCFSPer)), true
	}
	if r.CPUPeriod != 0 {
		if r.CPUPeriod < minCFSPeriod || r.CPUPeriod > maxCFSPeriod {
			return nil, errdefs.Invalidf("invalid CpuPeriod %d: must be between 1ms and 1s (1000-1000000)", r.CPUPeriod)
		}
		cpu.Period, cpuSet = ptr(uint64(r.CPUPeriod)), true
	}
	if r.CPUQuota != 0 {
		if r.CPUQuota > 0 && r.CPUQuota < minCFSQuota {
			return nil, errdefs.Invalidf("invalid CpuQuota %d: must be 1000 (1ms) or more", r.CPUQuota)
		}
		if r.CPUQuota < -1 {
			return nil, errdefs.Invalidf("invalid CpuQuota %d", r.CPUQuota)
		}
		cpu.Quota, cpuSet = ptr(r.CPUQuota), true
	}
	if r.CPURealtimePeriod < 0 || r.CPURealtimeRuntime < -1 {
		return nil, errdefs.Invalidf("invalid CpuRealtimePeriod/CpuRealtimeRuntime %d/%d", r.CPURealtimePeriod, r.CPURealtimeRuntime)
	}
	if r.CPURealtimePeriod > 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return nil, errdefs.Invalidf("invalid CpuRealtimeRuntime %d: cannot be higher than CpuRealtimePeriod %d", r.CPURealtimeRuntime, r.CPURealtimePeriod)
	}
	if r.CPURealtimePeriod > 0 {
		cpu.RealtimePeriod, cpuSet = ptr(uint64(r.CPURealtimePeriod)), true
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime, cpuSet = ptr(r.CPURealtimeRuntime), true
	}
	if r.CpusetCpus != "" {
		if err := checkCPUList(r.CpusetCpus); err != nil {
			return nil, errdefs.Invalidf("invalid CpusetCpus %q: %v", r.CpusetCpus, err)
		}
		cpu.Cpus, cpuSet = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		if err := checkCPUList(r.CpusetMems); err != nil {
			return nil, errdefs.Invalidf("invalid CpusetMems %q: %v", r.CpusetMems, err)
		}
		cpu.Mems, cpuSet = r.CpusetMems, true
	}
	if cpuSet {
		out.CPU = &cpu
	}

	// pids: 0 and -1 mean unlimited, nil leaves it unset.
	if r.PidsLimit != nil {
		l := *r.PidsLimit
		if l <= 0 {
			l = -1
		}
		out.Pids = &specs.LinuxPids{Limit: ptr(l)}
	}

	// block IO
	bio, err := blockIO(in, r)
	if err != nil {
		return nil, err
	}
	out.BlockIO = bio
	return out, nil
}

func blockIO(in Input, r container.Resources) (*specs.LinuxBlockIO, error) {
	var b specs.LinuxBlockIO
	set := false
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < minBlkioWeight || r.BlkioWeight > maxBlkioWeight {
			return nil, errdefs.Invalidf("invalid BlkioWeight %d: must be between 10 and 1000", r.BlkioWeight)
		}
		b.Weight, set = ptr(r.BlkioWeight), true
	}
	for _, wd := range r.BlkioWeightDevice {
		if wd == nil {
			continue
		}
		if wd.Weight != 0 && (wd.Weight < minBlkioWeight || wd.Weight > maxBlkioWeight) {
			return nil, errdefs.Invalidf("invalid BlkioWeightDevice %s:%d: weight must be between 10 and 1000", wd.Path, wd.Weight)
		}
		d, err := blockDevice(in, "BlkioWeightDevice", wd.Path)
		if err != nil {
			return nil, err
		}
		b.WeightDevice = append(b.WeightDevice, specs.LinuxWeightDevice{LinuxBlockIODevice: d, Weight: ptr(wd.Weight)})
		set = true
	}
	for _, t := range []struct {
		field string
		in    []*blkiodev.ThrottleDevice
		out   *[]specs.LinuxThrottleDevice
	}{
		{"BlkioDeviceReadBps", r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{"BlkioDeviceWriteBps", r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{"BlkioDeviceReadIOps", r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{"BlkioDeviceWriteIOps", r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, td := range t.in {
			if td == nil {
				continue
			}
			d, err := blockDevice(in, t.field, td.Path)
			if err != nil {
				return nil, err
			}
			*t.out = append(*t.out, specs.LinuxThrottleDevice{LinuxBlockIODevice: d, Rate: td.Rate})
			set = true
		}
	}
	if !set {
		return nil, nil
	}
	return &b, nil
}

// blockDevice finds a block device's numbers through the lookup function.
func blockDevice(in Input, field, p string) (specs.LinuxBlockIODevice, error) {
	if in.LookupDevice == nil {
		return specs.LinuxBlockIODevice{}, errdefs.Invalidf("invalid %s %q: device lookup is not available", field, p)
	}
	devs, err := in.LookupDevice(p)
	if err != nil {
		return specs.LinuxBlockIODevice{}, errdefs.Invalid(fmt.Errorf("invalid %s %q: %w", field, p, err))
	}
	if len(devs) != 1 || devs[0].Type != "b" {
		return specs.LinuxBlockIODevice{}, errdefs.Invalidf("invalid %s %q: not a block device", field, p)
	}
	return specs.LinuxBlockIODevice{Major: devs[0].Major, Minor: devs[0].Minor}, nil
}

// checkCPUList checks a cpuset list such as "0-3,5".
func checkCPUList(s string) error {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a >= maxCPUIndex {
			return fmt.Errorf("bad element %q", part)
		}
		if isRange {
			b, err := strconv.Atoi(hi)
			if err != nil || b < a || b >= maxCPUIndex {
				return fmt.Errorf("bad range %q", part)
			}
		}
	}
	return nil
}

// allowedDevices are the devices every container may use: Docker's (runc's)
// default device cgroup rules after "deny all".
func allowedDevices() []specs.LinuxDeviceCgroup {
	rule := func(t string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: t, Access: access}
		if major >= 0 {
			r.Major = ptr(major)
		}
		if minor >= 0 {
			r.Minor = ptr(minor)
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule("c", -1, -1, "m"),    // mknod of any char device
		rule("b", -1, -1, "m"),    // mknod of any block device
		rule("c", 1, 3, "rwm"),    // /dev/null
		rule("c", 1, 5, "rwm"),    // /dev/zero
		rule("c", 1, 7, "rwm"),    // /dev/full
		rule("c", 1, 8, "rwm"),    // /dev/random
		rule("c", 1, 9, "rwm"),    // /dev/urandom
		rule("c", 5, 0, "rwm"),    // /dev/tty
		rule("c", 5, 1, "rwm"),    // /dev/console
		rule("c", 5, 2, "rwm"),    // /dev/ptmx
		rule("c", 136, -1, "rwm"), // /dev/pts/*
		rule("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// devices makes --device nodes and the device cgroup rules.
func devices(in Input, host *container.HostConfig) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	if host.Privileged {
		var devs []specs.LinuxDevice
		if in.LookupDevice != nil {
			all, err := in.LookupDevice("/dev")
			if err != nil {
				return nil, nil, fmt.Errorf("list host devices: %w", err)
			}
			devs = all
		}
		return devs, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
	}
	rules := allowedDevices()
	var devs []specs.LinuxDevice
	for _, dm := range host.Devices {
		perms := dm.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !validAccess(perms) {
			return nil, nil, errdefs.Invalidf("invalid Devices %s: bad cgroup permissions %q", dm.PathOnHost, dm.CgroupPermissions)
		}
		if !path.IsAbs(dm.PathOnHost) {
			return nil, nil, errdefs.Invalidf("invalid Devices %q: host path must be absolute", dm.PathOnHost)
		}
		dst := dm.PathInContainer
		if dst == "" {
			dst = dm.PathOnHost
		}
		if !path.IsAbs(dst) || path.Clean(dst) == "/" {
			return nil, nil, errdefs.Invalidf("invalid Devices %s:%s: container path must be absolute", dm.PathOnHost, dm.PathInContainer)
		}
		dst = path.Clean(dst)
		if in.LookupDevice == nil {
			return nil, nil, errdefs.Invalidf("invalid Devices %q: device lookup is not available", dm.PathOnHost)
		}
		found, err := in.LookupDevice(dm.PathOnHost)
		if err != nil {
			return nil, nil, errdefs.Invalid(fmt.Errorf("invalid Devices %q: %w", dm.PathOnHost, err))
		}
		if len(found) == 0 {
			return nil, nil, errdefs.Invalidf("invalid Devices %q: no devices found", dm.PathOnHost)
		}
		hostRoot := path.Clean(dm.PathOnHost)
		for _, d := range found {
			rel := strings.TrimPrefix(path.Clean(d.Path), hostRoot)
			d.Path = path.Join(dst, rel)
			devs = append(devs, d)
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: perms})
		}
	}
	for _, r := range host.DeviceCgroupRules {
		rule, err := parseDeviceRule(r)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, rule)
	}
	return devs, rules, nil
}

func validAccess(a string) bool {
	if a == "" || len(a) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range a {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseDeviceRule parses a --device-cgroup-rule: "c 1:3 mr", "a *:* rwm".
func parseDeviceRule(s string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.Invalidf("invalid DeviceCgroupRules %q: want 'type major:minor access', e.g. 'c 1:3 rwm'", s)
	f := strings.Fields(s)
	if len(f) != 3 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	if f[0] != "a" && f[0] != "b" && f[0] != "c" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, mnr, ok := strings.Cut(f[1], ":")
	if !ok || !validAccess(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(x string) (*int64, bool) {
		if x == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil || n < 0 || n > 1<<32-1 {
			return nil, false
		}
		return ptr(n), true
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Access: f[2]}
	if r.Major, ok = num(maj); !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	if r.Minor, ok = num(mnr); !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return r, nil
}

// ipcSysctls are the kernel.* sysctls an IPC namespace holds.
var ipcSysctls = map[string]bool{
	"kernel.msgmax":          true,
	"kernel.msgmnb":          true,
	"kernel.msgmni":          true,
	"kernel.sem":             true,
	"kernel.shmall":          true,
	"kernel.shmmax":          true,
	"kernel.shmmni":          true,
	"kernel.shm_rmid_forced": true,
}

// sysctls checks --sysctl values as Docker does: only namespaced ones, and
// only when the container has the namespace that holds them.
func sysctls(in map[string]string, netPrivate, ipcPrivate bool) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if !validSysctlName(k) {
			return nil, errdefs.Invalidf("invalid Sysctls %s=%s: malformed name", k, v)
		}
		if strings.ContainsRune(v, 0) {
			return nil, errdefs.Invalidf("invalid Sysctls %s: value contains NUL", k)
		}
		// The kernel accepts both "net.ipv4.ip_forward" and
		// "net/ipv4/ip_forward"; judge the dotted prefix.
		norm := k
		if strings.Contains(k, "/") {
			norm = strings.ReplaceAll(k, "/", ".")
		}
		switch {
		case ipcSysctls[norm] || strings.HasPrefix(norm, "fs.mqueue."):
			if !ipcPrivate {
				return nil, errdefs.Invalidf("invalid Sysctls %s=%s: not allowed with the host's IPC namespace", k, v)
			}
		case strings.HasPrefix(norm, "net."):
			if !netPrivate {
				return nil, errdefs.Invalidf("invalid Sysctls %s=%s: not allowed with the host's network namespace", k, v)
			}
		default:
			return nil, errdefs.Invalidf("invalid Sysctls %s=%s: not a namespaced sysctl a container may set", k, v)
		}
		out[k] = v
	}
	return out, nil
}

// netDefaultSysctls are what Docker sets in every container with its own
// network namespace, unless --sysctl says otherwise: ping without
// CAP_NET_RAW, and binding ports below 1024 without CAP_NET_BIND_SERVICE
// (a non-root nginx on port 80).
var netDefaultSysctls = map[string]string{
	"net.ipv4.ping_group_range":           "0 2147483647",
	"net.ipv4.ip_unprivileged_port_start": "0",
}

// withNetDefaults adds netDefaultSysctls to the checked --sysctl values,
// which win (in either spelling).
func withNetDefaults(set map[string]string) map[string]string {
	out := make(map[string]string, len(set)+len(netDefaultSysctls))
	for k, v := range netDefaultSysctls {
		if _, ok := set[k]; ok {
			continue
		}
		if _, ok := set[strings.ReplaceAll(k, ".", "/")]; ok {
			continue
		}
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	return out
}

// validSysctlName refuses names that, turned into a /proc/sys path, could
// leave /proc/sys or name something odd: empty components, "." or "..".
func validSysctlName(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	sep := "."
	if strings.Contains(k, "/") {
		sep = "/"
	}
	for _, c := range strings.Split(k, sep) {
		if c == "" || c == "." || c == ".." {
			return false
		}
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' && sep == "/" || r == ':' || r == '@') {
				return false
			}
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
