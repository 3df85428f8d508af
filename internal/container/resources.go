package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/cgroup"
	"github.com/berth/berth/internal/errdefs"
)

// CgroupRoot is where the cgroup hierarchies are mounted ("" is the
// default); tests may point it elsewhere.
var cgroupRoot = ""

// cgroupOf opens the cgroup of running container c: the path its spec (in
// the bundle) names.
func (s *Service) cgroupOf(c *Container) (cgroup.Manager, error) {
	if !c.Running() {
		return nil, errdefs.Conflictf("container %s is not running", c.ID)
	}
	p := "/berth/" + c.ID
	if b, err := os.ReadFile(filepath.Join(s.bundle(c.ID), "config.json")); err == nil {
		var sp specs.Spec
		if json.Unmarshal(b, &sp) == nil && sp.Linux != nil && sp.Linux.CgroupsPath != "" {
			p = sp.Linux.CgroupsPath
		}
	}
	return cgroup.New(p, cgroup.Options{Root: cgroupRoot})
}

// Pause freezes every process of a running container (cgroup freezer).
func (s *Service) Pause(ctx context.Context, ref string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	if c, err = s.index.get(c.ID); err != nil {
		return err
	}
	switch c.State.Status {
	case StatusPaused:
		return errdefs.Conflictf("container %s is already paused", c.ID)
	case StatusRunning:
	default:
		return errdefs.Conflictf("container %s is not running", c.ID)
	}
	m, err := s.cgroupOf(c)
	if err != nil {
		return err
	}
	if err := m.Freeze(); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID, err)
	}
	if c, err = s.mutate(ctx, c.ID, func(c *Container) { c.State.Status = StatusPaused }); err != nil {
		m.Thaw()
		return err
	}
	s.publish(c, events.ActionPause)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, ref string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	if c, err = s.index.get(c.ID); err != nil {
		return err
	}
	if c.State.Status != StatusPaused {
		return errdefs.Conflictf("container %s is not paused", c.ID)
	}
	if err := s.thaw(ctx, c); err != nil {
		return err
	}
	if c, err = s.index.get(c.ID); err == nil {
		s.publish(c, events.ActionUnPause)
	}
	return nil
}

// thaw unfreezes paused container c and records it as running.
// Preconditions: the caller holds s.ops.lock(c.ID).
func (s *Service) thaw(ctx context.Context, c *Container) error {
	m, err := s.cgroupOf(c)
	if err != nil {
		return err
	}
	if err := m.Thaw(); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID, err)
	}
	_, err = s.mutate(ctx, c.ID, func(c *Container) {
		if c.State.Status == StatusPaused {
			c.State.Status = StatusRunning
		}
	})
	return err
}

// thawAfterKill lets a signal sent to a paused container be delivered, as
// Docker does: a frozen process acts on no signal, not even SIGKILL.
func (s *Service) thawAfterKill(ctx context.Context, id string) {
	unlock := s.ops.lock(id)
	defer unlock()
	if c, err := s.index.get(id); err == nil && c.State.Status == StatusPaused {
		s.thaw(ctx, c)
	}
}

// Stats is one sample of GET /containers/{id}/stats, without precpu.
func (s *Service) Stats(ctx context.Context, ref string) (container.StatsResponse, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return container.StatsResponse{}, err
	}
	out := container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux", Read: time.Now().UTC()}
	if !c.Running() {
		return out, nil // Docker sends zeroes for a stopped container
	}
	m, err := s.cgroupOf(c)
	if err != nil {
		return out, err
	}
	st, err := cgroup.ReadStats(m)
	if err != nil {
		return out, fmt.Errorf("stats of container %s: %w", c.ID, err)
	}
	out.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage: st.CPU.Usage, PercpuUsage: st.CPU.PerCPU,
			UsageInKernelmode: st.CPU.System, UsageInUsermode: st.CPU.User,
		},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(runtime.NumCPU()),
		ThrottlingData: container.ThrottlingData{
			Periods: st.CPU.Periods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledTime,
		},
	}
	limit := st.Memory.Limit
	if limit == 0 || limit > hostMemory() {
		limit = hostMemory()
	}
	out.MemoryStats = container.MemoryStats{Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Stats: st.Memory.Stat, Failcnt: st.Memory.Failcnt, Limit: limit}
	out.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	out.BlkioStats = container.BlkioStats{}
	for _, io := range st.IO {
		e := container.BlkioStatEntry{Major: io.Major, Minor: io.Minor, Op: io.Op}
		if io.Bytes > 0 || io.IOs == 0 {
			e.Value = io.Bytes
			out.BlkioStats.IoServiceBytesRecursive = append(out.BlkioStats.IoServiceBytesRecursive, e)
		}
		if io.IOs > 0 {
			e.Value = io.IOs
			out.BlkioStats.IoServicedRecursive = append(out.BlkioStats.IoServicedRecursive, e)
		}
	}
	out.Networks = netStats(c.State.Pid)
	return out, nil
}

// systemCPUUsage is the host's CPU time in nanoseconds, from /proc/stat,
// as Docker reports it for the CPU percentage.
func systemCPUUsage() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range f[1:8] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * (1e9 / 100) // USER_HZ is 100 on Linux
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// netStats reads the interfaces of the network namespace pid is in,
// loopback left out, as Docker's networks map.
func netStats(pid int) map[string]container.NetworkStats {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]container.NetworkStats{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" {
			continue
		}
		v := strings.Fields(rest)
		if len(v) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(v[i], 10, 64)
		}
		out[name] = container.NetworkStats{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Top is GET /containers/{id}/top: `ps psArgs` on the host, the rows of
// the container's processes.
func (s *Service) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	if !c.Running() {
		return container.TopResponse{}, errdefs.Conflictf("container %s is not running", c.ID)
	}
	m, err := s.cgroupOf(c)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := cgroup.AllPids(m)
	if err != nil {
		return container.TopResponse{}, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	args := strings.Fields(psArgs)
	if slices.ContainsFunc(args, func(a string) bool { return strings.ContainsAny(a, "\x00") }) {
		return container.TopResponse{}, errdefs.Invalidf("invalid ps arguments %q", psArgs)
	}
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return container.TopResponse{}, errdefs.Invalidf("ps %s: %s", psArgs, msg)
	}
	top, err := parsePS(string(out), pids)
	if err == nil {
		s.publish(c, events.ActionTop)
	}
	return top, err
}

// parsePS keeps the rows of ps output whose PID column is one of pids.
// The last column (the command) may hold spaces.
func parsePS(out string, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return container.TopResponse{}, errdefs.Invalidf("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return container.TopResponse{}, errdefs.Invalidf("couldn't find PID field in ps output")
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < len(titles) {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}

// Update is POST /containers/{id}/update: new resource limits and restart
// policy, applied live to a running container's cgroup and stored.
func (s *Service) Update(ctx context.Context, ref string, u container.UpdateConfig) ([]string, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return nil, err
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	if c, err = s.index.get(c.ID); err != nil {
		return nil, err
	}
	hc := *c.HostConfig
	if err := mergeUpdate(&hc, u); err != nil {
		return nil, err
	}
	if err := validateHostConfig(&hc); err != nil {
		return nil, err
	}
	next := *c
	next.HostConfig = &hc
	if next.Running() {
		img, err := s.cfg.Images.Resolve(ctx, c.Image)
		if err != nil {
			return nil, err
		}
		sp, err := s.cfg.Spec(ctx, &next, img, SpecFiles{Rootfs: s.rootfs(c.ID)})
		if err != nil {
			return nil, err
		}
		if sp.Linux != nil && sp.Linux.Resources != nil {
			r := *sp.Linux.Resources
			r.Devices = nil // not changed by update
			m, err := s.cgroupOf(c)
			if err != nil {
				return nil, err
			}
			if err := m.Set(&r); err != nil {
				return nil, fmt.Errorf("update container %s: %w", c.ID, err)
			}
		}
	}
	if c, err = s.mutate(ctx, c.ID, func(c *Container) { c.HostConfig = &hc }); err != nil {
		return nil, err
	}
	s.publish(c, events.ActionUpdate)
	return []string{}, nil
}

// mergeUpdate sets in hc what u sets (zero means unchanged), with
// Docker's checks on memory and swap.
func mergeUpdate(hc *container.HostConfig, u container.UpdateConfig) error {
	r, cur := u.Resources, &hc.Resources
	if r.Memory != 0 && r.Memory < 6*1024*1024 {
		return errdefs.Invalidf("minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap == 0 && cur.MemorySwap > 0 && r.Memory > cur.MemorySwap {
		return errdefs.Invalidf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
	}
	if r.MemorySwap > 0 {
		mem := r.Memory
		if mem == 0 {
			mem = cur.Memory
		}
		if mem == 0 {
			return errdefs.Invalidf("you should always set the Memory limit when using Memoryswap limit")
		}
		if r.MemorySwap < mem {
			return errdefs.Invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
		}
	}
	if r.NanoCPUs != 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0) {
		return errdefs.Invalidf("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
	}
	if r.NanoCPUs < 0 || r.NanoCPUs > int64(runtime.NumCPU())*1e9 {
		return errdefs.Invalidf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", runtime.NumCPU(), runtime.NumCPU())
	}
	set := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	set(&cur.Memory, r.Memory)
	set(&cur.MemorySwap, r.MemorySwap)
	set(&cur.MemoryReservation, r.MemoryReservation)
	set(&cur.CPUShares, r.CPUShares)
	set(&cur.CPUQuota, r.CPUQuota)
	set(&cur.CPUPeriod, r.CPUPeriod)
	set(&cur.CPURealtimePeriod, r.CPURealtimePeriod)
	set(&cur.CPURealtimeRuntime, r.CPURealtimeRuntime)
	if r.NanoCPUs != 0 {
		cur.NanoCPUs, cur.CPUQuota, cur.CPUPeriod = r.NanoCPUs, 0, 0
	} else if r.CPUQuota != 0 || r.CPUPeriod != 0 {
		cur.NanoCPUs = 0
	}
	if r.BlkioWeight != 0 {
		cur.BlkioWeight = r.BlkioWeight
	}
	if r.CpusetCpus != "" {
		cur.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		cur.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		cur.PidsLimit = &v
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != "no" {
			return errdefs.Invalidf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	return nil
}
