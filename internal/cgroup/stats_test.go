package cgroup

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/testutil"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestModeFakeTrees(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  ModeKind
	}{
		{"unified", map[string]string{"cgroup.controllers": "cpu memory pids\n"}, Unified},
		{"hybrid", map[string]string{"memory/tasks": "", "unified/cgroup.controllers": "hugetlb\n"}, Hybrid},
		{"legacy", map[string]string{"memory/tasks": "", "cpu,cpuacct/tasks": ""}, Legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			got, err := Mode(dir)
			if err != nil || got != tt.want {
				t.Errorf("Mode = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := Mode(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Mode of a missing root: no error")
	}
}

func TestModeThisHost(t *testing.T) {
	m, err := Mode("")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this host's cgroup mode: %v", m)
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && m != Hybrid {
		t.Errorf("a host with /sys/fs/cgroup/unified is %v, want hybrid", m)
	}
}

func TestStatsFakeV2(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "cpu memory pids io\n"})
	m, err := New("/c1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()[""]
	writeTree(t, dir, map[string]string{
		"memory.current": "1048576\n",
		"memory.peak":    "2097152\n",
		"memory.max":     "max\n",
		"memory.events":  "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"memory.stat":    "anon 4096\nfile 8192\n",
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 70\n",
		"pids.current":   "3\n",
		"pids.max":       "64\n",
		"io.stat":        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	got, err := ReadStats(m)
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Memory: MemoryStats{Usage: 1 << 20, MaxUsage: 2 << 20, Failcnt: 3, Stat: map[string]uint64{"anon": 4096, "file": 8192}},
		CPU:    CPUStats{Usage: 1500000, User: 1000000, System: 500000, Periods: 10, ThrottledPeriods: 2, ThrottledTime: 70000},
		Pids:   PidsStats{Current: 3, Limit: 64},
		IO:     []IOStat{{Major: 8, Minor: 0, Op: "Read", Bytes: 4096, IOs: 1}, {Major: 8, Minor: 0, Op: "Write", Bytes: 8192, IOs: 2}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestStatsFakeV1(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"memory/tasks": "", "cpu,cpuacct/tasks": "", "pids/tasks": "", "blkio/tasks": ""})
	m, err := New("/c1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	p := m.Paths()
	writeTree(t, p["memory"], map[string]string{
		"memory.usage_in_bytes":     "1048576\n",
		"memory.max_usage_in_bytes": "2097152\n",
		"memory.limit_in_bytes":     "9223372036854771712\n",
		"memory.failcnt":            "0\n",
		"memory.stat":               "cache 8192\nrss 4096\n",
	})
	writeTree(t, p["cpuacct"], map[string]string{
		"cpuacct.usage":        "123456789\n",
		"cpuacct.usage_percpu": "100000000 23456789 \n",
		"cpuacct.stat":         "user 5\nsystem 7\n",
		"cpu.stat":             "nr_periods 4\nnr_throttled 1\nthrottled_time 999\n",
	})
	writeTree(t, p["pids"], map[string]string{"pids.current": "2\n", "pids.max": "max\n"})
	writeTree(t, p["blkio"], map[string]string{
		"blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
		"blkio.throttle.io_serviced_recursive":      "8:0 Read 1\nTotal 1\n",
	})
	got, err := ReadStats(m)
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Memory: MemoryStats{Usage: 1 << 20, MaxUsage: 2 << 20, Stat: map[string]uint64{"cache": 8192, "rss": 4096}},
		CPU:    CPUStats{Usage: 123456789, PerCPU: []uint64{100000000, 23456789}, User: 5e7, System: 7e7, Periods: 4, ThrottledPeriods: 1, ThrottledTime: 999},
		Pids:   PidsStats{Current: 2},
		IO: []IOStat{
			{Major: 8, Op: "Read", Bytes: 4096}, {Major: 8, Op: "Write"},
			{Major: 8, Op: "Read", IOs: 1},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestAllPidsFake(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "pids\n"})
	m, err := New("/c1", Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()[""]
	writeTree(t, dir, map[string]string{
		"cgroup.procs":        "10\n11\n",
		"sub/cgroup.procs":    "12\n",
		"sub/a/cgroup.procs":  "13\n11\n",
		"other/cgroup.procs":  "",
		"sub/a/b/cgroup.type": "domain\n",
	})
	got, err := AllPids(m)
	if err != nil || !slices.Equal(got, []int{10, 11, 12, 13}) {
		t.Errorf("AllPids = %v, %v", got, err)
	}
}

// FuzzParseCgroupFiles: the stats parsers read files a container with a
// writable cgroup namespace may shape (its own sub-cgroups); they must
// never panic.
func FuzzParseCgroupFiles(f *testing.F) {
	f.Add("8:0 rbytes=1 wbytes=2 rios=3 wios=4\n")
	f.Add("8:0 Read 4096\nTotal 1\n")
	f.Add("usage_usec 10\nmax\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseIOStat(s)
		parseBlkio(s, true)
		parseKeyed(bufio.NewScanner(strings.NewReader(s)))
		parseUint(s)
	})
}

// TestRealV1Stats runs on this machine's hybrid v1 layout: a real child
// in a real cgroup, limits set through Set and read back through
// ReadStats, its pids found recursively, the unified-hierarchy twin
// joined, Freeze/Thaw seen in /proc, and nothing left behind.
func TestRealV1Stats(t *testing.T) {
	testutil.RequireRoot(t)
	if m, err := Mode(""); err != nil || m == Unified {
		t.Skipf("test written for a v1 host (mode %v, %v)", m, err)
	}
	parent := fmt.Sprintf("/berth-a2-test-%d", os.Getpid())
	m, err := New(parent+"/c1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var uni string
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if err := m.Destroy(); err != nil {
			t.Error(err)
		}
		if err := RemoveUnified(uni); err != nil {
			t.Error(err)
		}
		for _, d := range m.Paths() {
			os.Remove(filepath.Dir(d))
		}
		if uni != "" {
			os.Remove(filepath.Dir(uni))
		}
		for _, d := range append(slices.Collect(maps.Values(m.Paths())), uni) {
			if _, err := os.Stat(d); d != "" && err == nil {
				t.Errorf("left behind: %s", d)
			}
		}
	})
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	uni, err = JoinUnified("", parent+"/c1", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if mode, _ := Mode(""); mode == Hybrid {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		if !strings.Contains(string(b), "0::"+parent+"/c1\n") {
			t.Errorf("not in the unified twin: %s", b)
		}
	}
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(9)},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStats(m)
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Limit != 64<<20 || st.Pids.Limit != 9 || st.Pids.Current != 1 {
		t.Errorf("stats: memory %+v pids %+v", st.Memory, st.Pids)
	}
	pids, err := AllPids(m)
	if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("AllPids = %v, %v", pids, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := procState(t, cmd.Process.Pid); s != "D" && s != "T" && s != "S" {
		t.Errorf("frozen process state %q", s)
	}
	if b, _ := os.ReadFile(filepath.Join(m.Paths()["freezer"], "freezer.state")); strings.TrimSpace(string(b)) != "FROZEN" {
		t.Errorf("freezer.state = %q", b)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m.Paths()["freezer"], "freezer.state")); strings.TrimSpace(string(b)) != "THAWED" {
		t.Errorf("freezer.state after thaw = %q", b)
	}
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) S ...
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 0 && (f[0] != "R" || time.Now().After(deadline)) {
			return f[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
}
