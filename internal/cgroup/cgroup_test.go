package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }

func TestPlans(t *testing.T) {
	tests := []struct {
		name   string
		r      *specs.LinuxResources
		v1, v2 []string
	}{
		{"nil", nil, nil, nil},
		{
			"memory",
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(2 << 20), Reservation: i64(1 << 19)}},
			[]string{"memory/memory.limit_in_bytes=1048576", "memory/memory.memsw.limit_in_bytes=2097152", "memory/memory.soft_limit_in_bytes=524288"},
			[]string{"memory.low=524288", "memory.max=1048576", "memory.swap.max=1048576"},
		},
		{
			"unlimited memory",
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}},
			[]string{"memory/memory.limit_in_bytes=-1", "memory/memory.memsw.limit_in_bytes=-1"},
			[]string{"memory.max=max", "memory.swap.max=max"},
		},
		{
			"cpu",
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0-1", Mems: "0"}},
			[]string{"cpu/cpu.shares=1024", "cpu/cpu.cfs_period_us=100000", "cpu/cpu.cfs_quota_us=50000", "cpuset/cpuset.cpus=0-1", "cpuset/cpuset.mems=0"},
			[]string{"cpu.weight=39", "cpu.max=50000 100000", "cpuset.cpus=0-1", "cpuset.mems=0"},
		},
		{
			"quota unlimited",
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}},
			[]string{"cpu/cpu.cfs_quota_us=-1"},
			[]string{"cpu.max=max 100000"},
		},
		{
			"pids",
			&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(64)}},
			[]string{"pids/pids.max=64"},
			[]string{"pids.max=64"},
		},
		{
			"blkio",
			&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}}}},
			[]string{"blkio/blkio.weight=500", "blkio/blkio.throttle.read_bps_device=8:0 1000"},
			[]string{"io.weight=4950", "io.max=8:0 rbps=1000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w1, err := PlanV1(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			w2, err := PlanV2(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.v1, strs(w1)); d != "" {
				t.Errorf("v1 (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.v2, strs(w2)); d != "" {
				t.Errorf("v2 (-want +got):\n%s", d)
			}
		})
	}
}

func strs(ws []Write) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

func TestPlanV1Devices(t *testing.T) {
	ws, err := PlanV1(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rw"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := strs(ws)
	want := []string{"devices/devices.deny=a", "devices/devices.deny=a", "devices/devices.allow=c 10:200 rw", "devices/devices.allow=c *:* m"}
	if d := cmp.Diff(want, got[:4]); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !slices.Contains(got, "devices/devices.allow=c 1:3 rwm") {
		t.Errorf("/dev/null not allowed by default: %v", got)
	}
	if _, err := PlanV1(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad type: got %v, want invalid", err)
	}
}

func TestPlanV2Errors(t *testing.T) {
	for name, r := range map[string]*specs.LinuxResources{
		"bad pagesize":    {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../../x", Limit: 1}}},
		"swap below mem":  {Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}},
		"unified escapes": {Unified: map[string]string{"../x": "1"}},
	} {
		if _, err := PlanV2(r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPlanV1Rejects(t *testing.T) {
	for name, r := range map[string]*specs.LinuxResources{
		"unified on v1": {Unified: map[string]string{"memory.high": "1"}},
		"bad pagesize":  {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB/../../../x", Limit: 1}}},
	} {
		if _, err := PlanV1(r); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: got %v, want invalid", name, err)
		}
	}
	if _, err := New("system.slice:berth:x", Options{}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("systemd path: got %v", err)
	}
}

func TestMemoryRaiseOrder(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "memory", "c"), 0o755)
	os.WriteFile(filepath.Join(root, "memory", "c", "memory.memsw.limit_in_bytes"), []byte("1000\n"), 0o644)
	m, err := New("c", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := PlanV1(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2000), Swap: i64(4000)}})
	got := strs(m.(*v1).orderMemory(ws))
	want := []string{"memory/memory.memsw.limit_in_bytes=4000", "memory/memory.limit_in_bytes=2000"}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
	ws, _ = PlanV1(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(500), Swap: i64(800)}})
	if got := strs(m.(*v1).orderMemory(ws)); got[0] != "memory/memory.limit_in_bytes=500" {
		t.Errorf("lowering: %v", got)
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
22 1 0:21 / /proc rw - proc proc rw
`
	hs, err := parseMountinfo(strings.NewReader(in), "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"/sys/fs/cgroup/cpu,cpuacct": {"cpu", "cpuacct"}, "/sys/fs/cgroup/systemd": {"name=systemd"}}
	if d := cmp.Diff(want, hs); d != "" {
		t.Error(d)
	}
}

func TestFakeV2(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644)
	m, err := New("/berth/c1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "berth", "c1", "pids.max"))
	if string(b) != "10" {
		t.Errorf("pids.max = %q", b)
	}
	b, _ = os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
	if string(b) != "+cpu +memory +pids" {
		t.Errorf("subtree_control = %q", b)
	}
}

func TestFakeV1CpusetCopiesDown(t *testing.T) {
	root := t.TempDir()
	for _, h := range []string{"cpuset", "cpu,cpuacct", "unified"} {
		os.MkdirAll(filepath.Join(root, h), 0o755)
	}
	os.WriteFile(filepath.Join(root, "cpuset", "cpuset.cpus"), []byte("0-3\n"), 0o644)
	os.WriteFile(filepath.Join(root, "cpuset", "cpuset.mems"), []byte("0\n"), 0o644)
	m, err := New("a/b", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "cpuset", "a", "b", "cpuset.cpus"))
	if string(b) != "0-3" {
		t.Errorf("cpuset.cpus = %q", b)
	}
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512)}}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(root, "cpu,cpuacct", "a", "b", "cpu.shares"))
	if string(b) != "512" {
		t.Errorf("cpu.shares = %q", b)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(1)}}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("missing controller: got %v", err)
	}
}

func TestRealCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("test written for this machine's v1 hierarchy")
	}
	m, err := New("/berth-test/"+strconv.Itoa(os.Getpid()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if err := m.Destroy(); err != nil {
			t.Error(err)
		}
		for _, d := range m.Paths() {
			os.Remove(filepath.Dir(d))
		}
	}()
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{
		Pids:    &specs.LinuxPids{Limit: i64(7)},
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(256)},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Fatalf("Pids = %v, %v", pids, err)
	}
	b, _ := os.ReadFile(filepath.Join(m.Paths()["pids"], "pids.max"))
	if strings.TrimSpace(string(b)) != "7" {
		t.Errorf("pids.max = %q", b)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup("9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a b\n0::/\n\n")
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/x", "cpu": "/a b", "cpuacct": "/a b"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestTaskFiles: v1 opens each hierarchy's tasks file; v2 has none.
func TestTaskFiles(t *testing.T) {
	root := t.TempDir()
	for _, h := range []string{"pids", "cpu,cpuacct", "unified"} {
		os.MkdirAll(filepath.Join(root, h), 0o755)
	}
	m, err := New("/berth/c1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TaskFiles(); err == nil {
		t.Error("TaskFiles before the cgroup exists succeeded")
	}
	if err := m.Apply(0); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"pids", "cpu,cpuacct"} {
		os.WriteFile(filepath.Join(root, h, "berth", "c1", "tasks"), nil, 0o644)
	}
	files, err := m.TaskFiles()
	if err != nil || len(files) != 2 {
		t.Fatalf("TaskFiles = %d files, %v; want 2", len(files), err)
	}
	for _, f := range files {
		f.Close()
	}
	v2root := t.TempDir()
	os.WriteFile(filepath.Join(v2root, "cgroup.controllers"), []byte("pids\n"), 0o644)
	m2, err := New("/berth/c1", Options{Root: v2root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.TaskFiles(); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("v2 TaskFiles: %v, want NotImplemented", err)
	}
}
