// Package cgroup places container processes in control groups and applies
// runtime-spec resource limits to them, on cgroup v1 (including the hybrid
// layout) and v2, behind one small Manager interface.
//
// Limits are planned by pure functions (PlanV1, PlanV2) that turn a
// LinuxResources into an ordered list of file writes; a thin writer applies
// the list. The plans are table-tested without root.
package cgroup

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
)

// Write is one planned write of Value to File in the Controller's
// hierarchy (Controller is empty on v2, where there is one hierarchy).
type Write struct {
	Controller string
	File       string
	Value      string
}

func (w Write) String() string {
	if w.Controller == "" {
		return fmt.Sprintf("%s=%s", w.File, w.Value)
	}
	return fmt.Sprintf("%s/%s=%s", w.Controller, w.File, w.Value)
}

// defaultAllowedDevices are the devices every container may use whatever
// its spec's device list says, as runc does: the ones the runtime creates
// in /dev, the pty devices, and mknod of anything (creating a node is not
// using it).
var defaultAllowedDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(-1), Minor: i64(-1), Access: "m"},
	{Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: i64(136), Minor: i64(-1), Access: "rwm"}, // pts
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},    // ptmx
}

func i64(v int64) *int64 { return &v }

// PlanV1 returns the writes that apply r on a cgroup v1 host, in order.
func PlanV1(r *specs.LinuxResources) ([]Write, error) {
	if r == nil {
		return nil, nil
	}
	if err := checkPagesizes(r); err != nil {
		return nil, err
	}
	if len(r.Unified) > 0 {
		return nil, errdefs.Invalidf("linux.resources.unified: needs a cgroup v2 host; this one is v1")
	}
	var ws []Write
	add := func(ctrl, file, value string) { ws = append(ws, Write{ctrl, file, value}) }
	if len(r.Devices) > 0 {
		add("devices", "devices.deny", "a")
		for i, d := range append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), defaultAllowedDevices...) {
			rule, err := deviceRule(d)
			if err != nil {
				return nil, errdefs.Invalidf("linux.resources.devices[%d]: %w", i, err)
			}
			if d.Allow {
				add("devices", "devices.allow", rule)
			} else {
				add("devices", "devices.deny", rule)
			}
		}
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			add("memory", "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10))
		}
		if m.Swap != nil {
			add("memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10))
		}
		if m.Reservation != nil {
			add("memory", "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
		}
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			add("memory", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			add("memory", "memory.oom_control", "1")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		if c.Period != nil && *c.Period != 0 {
			add("cpu", "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
		}
		if c.Quota != nil && *c.Quota != 0 {
			add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			add("cpu", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			add("cpu", "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
		}
		if c.Cpus != "" {
			add("cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset", "cpuset.mems", c.Mems)
		}
	}
	if p := r.Pids; p != nil {
		if p.Limit != nil && *p.Limit > 0 {
			add("pids", "pids.max", strconv.FormatInt(*p.Limit, 10))
		} else if p.Limit != nil {
			add("pids", "pids.max", "max")
		}
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			add("blkio", "blkio.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			add("blkio", "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10))
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				add("blkio", "blkio.weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight))
			}
			if d.LeafWeight != nil {
				add("blkio", "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight))
			}
		}
		for _, t := range []struct {
			file string
			devs []specs.LinuxThrottleDevice
		}{
			{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				add("blkio", t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate))
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			add("net_cls", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		for _, p := range n.Priorities {
			add("net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
		}
	}
	return ws, nil
}

// PlanV2 returns the writes that apply r on a cgroup v2 (unified) host,
// converting v1-shaped values as runc does.
func PlanV2(r *specs.LinuxResources) ([]Write, error) {
	if r == nil {
		return nil, nil
	}
	if err := checkPagesizes(r); err != nil {
		return nil, err
	}
	var ws []Write
	add := func(file, value string) { ws = append(ws, Write{"", file, value}) }
	// Devices are not files on v2: Set attaches an eBPF filter (DeviceFilter).
	if m := r.Memory; m != nil {
		if m.Reservation != nil && *m.Reservation != 0 {
			add("memory.low", limitV2(*m.Reservation))
		}
		if m.Limit != nil && *m.Limit != 0 {
			add("memory.max", limitV2(*m.Limit))
		}
		if m.Swap != nil && *m.Swap != 0 {
			switch {
			case *m.Swap == -1:
				add("memory.swap.max", "max")
			case m.Limit == nil || *m.Limit <= 0:
				return nil, errdefs.Invalidf("linux.resources.memory.swap: needs a memory limit on cgroup v2")
			case *m.Swap < *m.Limit:
				return nil, errdefs.Invalidf("linux.resources.memory.swap: %d is below the memory limit %d", *m.Swap, *m.Limit)
			default:
				add("memory.swap.max", strconv.FormatInt(*m.Swap-*m.Limit, 10))
			}
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			return nil, errdefs.NotImplemented(fmt.Errorf("linux.resources.memory.disableOOMKiller: not available on cgroup v2"))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu.weight", strconv.FormatUint(SharesToWeight(*c.Shares), 10))
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			quota, period := "max", uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			add("cpu.max", fmt.Sprintf("%s %d", quota, period))
		}
		if c.RealtimePeriod != nil || c.RealtimeRuntime != nil {
			return nil, errdefs.NotImplemented(fmt.Errorf("linux.resources.cpu.realtime*: not available on cgroup v2"))
		}
		if c.Cpus != "" {
			add("cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset.mems", c.Mems)
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		if *p.Limit > 0 {
			add("pids.max", strconv.FormatInt(*p.Limit, 10))
		} else {
			add("pids.max", "max")
		}
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			add("io.weight", strconv.FormatUint(BlkioWeightToIOWeight(uint64(*b.Weight)), 10))
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				add("io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, BlkioWeightToIOWeight(uint64(*d.Weight))))
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice},
			{"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice},
			{"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				v := strconv.FormatUint(d.Rate, 10)
				if d.Rate == 0 {
					v = "max"
				}
				add("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, v))
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
	}
	for k, v := range r.Unified {
		if strings.Contains(k, "/") || strings.HasPrefix(k, ".") {
			return nil, errdefs.Invalidf("linux.resources.unified: bad file name %q", k)
		}
		add(k, v)
	}
	return ws, nil
}

// checkPagesizes keeps hugepage sizes, which become file names, to their
// kernel form ("2MB", "1GB").
func checkPagesizes(r *specs.LinuxResources) error {
	for i, h := range r.HugepageLimits {
		if !isPageSize(h.Pagesize) {
			return errdefs.Invalidf("linux.resources.hugepageLimits[%d].pageSize: %q is not a size like 2MB", i, h.Pagesize)
		}
	}
	return nil
}

func limitV2(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// SharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000].
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// BlkioWeightToIOWeight maps blkio.weight [10, 1000] onto io.weight [1, 10000].
func BlkioWeightToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (w-10)*9999/990
}

func deviceRule(d specs.LinuxDeviceCgroup) (string, error) {
	typ := d.Type
	switch typ {
	case "", "a":
		typ = "a"
	case "b", "c":
	default:
		return "", fmt.Errorf("type %q: want a, b or c", d.Type)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	for _, c := range access {
		if c != 'r' && c != 'w' && c != 'm' {
			return "", fmt.Errorf("access %q: want letters of rwm", d.Access)
		}
	}
	if typ == "a" {
		return "a", nil
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(d.Major), num(d.Minor), access), nil
}
