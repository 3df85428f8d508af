package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
)

func TestValidatePath(t *testing.T) {
	if err := ValidatePath("system.slice:berth:abc"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("systemd form: %v", err)
	}
	for _, p := range []string{"/berth/abc", "/a:b:c", "berth/abc"} {
		if err := ValidatePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
}

func TestValidateResources(t *testing.T) {
	sw := func(v uint64) *uint64 { return &v }
	w16 := func(v uint16) *uint16 { return &v }
	tests := []struct {
		name string
		r    specs.LinuxResources
		mode ModeKind
		want string // "" = valid
	}{
		{"ok", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(2 << 20)}, HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, Hybrid, ""},
		// Attack class: spec values that become file names must not climb out of the cgroup.
		{"hugepage traversal", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}, {Pagesize: "../../../../tmp/x"}}}, Hybrid, "linux.resources.hugepageLimits[1].pageSize"},
		{"unified traversal", specs.LinuxResources{Unified: map[string]string{"../../cgroup.procs": "1"}}, Unified, "is not a cgroup file name"},
		{"unified procs", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, Unified, "may not be written"},
		{"unified on v1", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, Hybrid, "linux.resources.unified: needs a cgroup v2 host"},
		{"unified ok", specs.LinuxResources{Unified: map[string]string{"memory.high": "1", "cgroup.max.depth": "4"}}, Unified, ""},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: sw(101)}}, Legacy, "linux.resources.memory.swappiness"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(1 << 20)}}, Legacy, "linux.resources.memory.swap"},
		{"negative limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-5)}}, Legacy, "linux.resources.memory.limit"},
		{"quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(10)}}, Legacy, "linux.resources.cpu.quota"},
		{"period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: sw(10)}}, Legacy, "linux.resources.cpu.period"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: w16(5)}}, Legacy, "linux.resources.blockIO.weight"},
		{"device", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "q"}}}, Legacy, "linux.resources.devices[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateResources(&tt.r, tt.mode)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want invalid containing %q", err, tt.want)
			}
		})
	}
}

func TestOrderMemoryV1(t *testing.T) {
	other := Write{"cpu", "cpu.shares", "512"}
	limit := func(v string) Write { return Write{"memory", "memory.limit_in_bytes", v} }
	swap := func(v string) Write { return Write{"memory", "memory.memsw.limit_in_bytes", v} }
	tests := []struct {
		name    string
		ws      []Write
		current uint64
		want    []Write
	}{
		{"raise: swap first", []Write{other, limit("200"), swap("400")}, 100, []Write{other, swap("400"), limit("200")}},
		{"lower: limit first", []Write{limit("50"), other, swap("80")}, 100, []Write{limit("50"), other, swap("80")}},
		{"unlimited swap first", []Write{limit("50"), swap("-1")}, 100, []Write{swap("-1"), limit("50")}},
		{"only limit", []Write{limit("50")}, 100, []Write{limit("50")}},
	}
	for _, tt := range tests {
		if got := OrderMemoryV1(tt.ws, tt.current); !cmp.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEnableControllersFakeV2(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cgroup.controllers":           "cpu memory pids\n",
		"cgroup.subtree_control":       "",
		"berth/cgroup.controllers":     "memory pids\n",
		"berth/cgroup.subtree_control": "",
	})
	dir := filepath.Join(root, "berth", "c1")
	if err := EnableControllers(root, dir); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"cgroup.subtree_control": "+cpu +memory +pids", "berth/cgroup.subtree_control": "+memory +pids"} {
		b, _ := os.ReadFile(filepath.Join(root, f))
		if string(b) != want {
			t.Errorf("%s = %q, want %q", f, b, want)
		}
	}
	if err := EnableControllers(root, "/elsewhere"); err == nil {
		t.Error("a dir outside root: no error")
	}
}
