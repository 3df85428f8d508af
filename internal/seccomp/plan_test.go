package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

func uptr(v uint) *uint { return &v }

func TestNewPlanErrors(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActErrno}
	tests := []struct {
		name  string
		cfg   specs.LinuxSeccomp
		class error
		want  string
	}{
		{"no default", specs.LinuxSeccomp{}, errdefs.ErrInvalid, `linux.seccomp.defaultAction: empty`},
		{"unknown default", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, errdefs.ErrInvalid, `linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{"default errno with allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uptr(1)}, errdefs.ErrInvalid, `linux.seccomp.defaultErrnoRet: only valid with`},
		{"unknown arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, "SCMP_ARCH_Z80"}}, errdefs.ErrInvalid, `linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"`},
		{"unknown flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, errdefs.ErrInvalid, `linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{"unknown action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{ok, ok, ok, {Names: []string{"uname"}, Action: "SCMP_ACT_FOO"}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`},
		{"no names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].names: empty`},
		{"empty name", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActErrno}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].names[1]: empty name`},
		{"errno with kill", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: uptr(1)}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].errnoRet: only valid with`},
		{"errno too big", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uptr(1 << 20)}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].errnoRet: 1048576 does not fit`},
		{"unknown op", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 1, Op: "SCMP_CMP_LIKE"}}}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_LIKE"`},
		{"bad index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, errdefs.ErrInvalid, `linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index`},
		{"notify default", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, errdefs.ErrNotImplemented, `linux.seccomp.defaultAction: SCMP_ACT_NOTIFY`},
		{"notify rule", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, errdefs.ErrNotImplemented, `linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY`},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"}, errdefs.ErrNotImplemented, `linux.seccomp.listenerPath`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(&tt.cfg)
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.want)
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error %q: class %v, want %v", err, errdefs.ClassOf(err), tt.class)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			// Load must refuse the same profile before touching the kernel.
			if lerr := Load(&tt.cfg); lerr == nil || lerr.Error() != err.Error() {
				t.Errorf("Load: %v, want %v", lerr, err)
			}
		})
	}
}

func TestNewPlanNormalises(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(38),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX86_64},
		Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"mkdir"}, Action: specs.ActErrno},
			{Names: []string{"personality"}, Action: specs.ActTrace, ErrnoRet: uptr(5),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xff, ValueTwo: 8}}},
		},
	}
	got, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{
		Default: Action{Kind: specs.ActErrno, Errno: 38},
		Arches:  []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Flags:   []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Rules: []Rule{
			{Index: 0, Names: []string{"read", "write"}, Action: Action{Kind: specs.ActAllow}},
			{Index: 1, Names: []string{"mkdir"}, Action: Action{Kind: specs.ActErrno, Errno: 1}},
			{Index: 2, Names: []string{"personality"}, Action: Action{Kind: specs.ActTrace, Errno: 5},
				Conds: []Cond{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xff, ValueTwo: 8}}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if p, err := NewPlan(nil); p != nil || err != nil {
		t.Errorf("NewPlan(nil) = %v, %v", p, err)
	}
}

func TestEveryArchAndActionKnown(t *testing.T) {
	// Every architecture and action the spec names must be accepted (or,
	// for NOTIFY, refused as not implemented), so a new spec constant is
	// not silently treated as unknown.
	for a := range archNames {
		if err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{a}}); err != nil {
			t.Errorf("arch %s: %v", a, err)
		}
	}
	for a := range actions {
		err := Validate(&specs.LinuxSeccomp{DefaultAction: a})
		if a == specs.ActNotify {
			if !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Errorf("action %s: %v, want not implemented", a, err)
			}
		} else if err != nil {
			t.Errorf("action %s: %v", a, err)
		}
	}
}

func TestExport(t *testing.T) {
	prog, err := Export(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		t.Fatalf("program of %d bytes, want a non-empty array of 8-byte sock_filter", len(prog))
	}
}

func TestUnknownSyscallSkipped(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "berth_no_such_syscall"}, Action: specs.ActErrno}},
	}
	if _, err := Export(cfg); err != nil {
		t.Fatalf("a profile naming an unknown syscall must still compile: %v", err)
	}
	if got := Skipped(cfg); !cmp.Equal(got, []string{"berth_no_such_syscall"}) {
		t.Errorf("Skipped = %v", got)
	}
}

func TestVersionAndSupported(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "2.") {
		t.Errorf("Version = %q, want libseccomp 2.x", v)
	}
	if !Supported() {
		t.Error("Supported() = false on a kernel with seccomp")
	}
}

// FuzzNewPlan feeds arbitrary linux.seccomp JSON (from an untrusted spec)
// through validation and compilation: neither may panic.
func FuzzNewPlan(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[{"index":0,"value":255,"valueTwo":8,"op":"SCMP_CMP_MASKED_EQ"},{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL","flags":["SECCOMP_FILTER_FLAG_LOG"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg specs.LinuxSeccomp
		if json.Unmarshal(data, &cfg) != nil {
			return
		}
		p, err := NewPlan(&cfg)
		if err != nil {
			return
		}
		if fl, err := build(p); err == nil {
			fl.Release()
		}
	})
}

func TestCompileCachesAndMatchesExport(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	p1, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Flags != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("Flags = %#x", p1.Flags)
	}
	same := *cfg
	p2, err := Compile(&same)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Error("an identical profile was compiled twice")
	}
	exp, err := Export(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exp, p1.Filter) {
		t.Error("Compile and Export disagree")
	}
	// A Program crosses to the init as JSON.
	b, err := json.Marshal(p1)
	if err != nil {
		t.Fatal(err)
	}
	var back Program
	if err := json.Unmarshal(b, &back); err != nil || !cmp.Equal(&back, p1) {
		t.Errorf("JSON round trip: %v, %v", err, cmp.Diff(p1, &back))
	}
	other := *cfg
	other.DefaultAction = specs.ActLog
	if p3, err := Compile(&other); err != nil || p3 == p1 {
		t.Errorf("a different profile got the cached program (%v)", err)
	}
}

func TestProgramLoadRejectsMalformed(t *testing.T) {
	for _, n := range []int{0, 7, 9} {
		p := &Program{Filter: make([]byte, n)}
		if err := p.Load(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%d bytes: %v, want invalid", n, err)
		}
	}
	var nilp *Program
	if err := nilp.Load(); err != nil {
		t.Errorf("nil program: %v", err)
	}
}

func TestENOSYSStubOnlyWhenDefaultDenies(t *testing.T) {
	rules := []Rule{{Names: []string{"read", "mkdir"}, Action: Action{Kind: specs.ActAllow}}}
	for _, tt := range []struct {
		def  Action
		want bool
	}{
		{Action{Kind: specs.ActAllow}, false},
		{Action{Kind: specs.ActLog}, false},
		{Action{Kind: specs.ActErrno, Errno: uint(unix.ENOSYS)}, false},
		{Action{Kind: specs.ActErrno, Errno: uint(unix.EPERM)}, true},
		{Action{Kind: specs.ActKillProcess}, true},
	} {
		p := &Plan{Default: tt.def, Arches: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, Rules: rules}
		stub := enosysStub(p)
		if (stub != nil) != tt.want {
			t.Errorf("default %v: stub of %d instructions, want one: %v", tt.def, len(stub), tt.want)
		}
		for i, in := range stub {
			if in.Code&0x07 == unix.BPF_JMP && in.Code != unix.BPF_JMP|unix.BPF_JA && (i+1+int(in.Jt) > len(stub) || i+1+int(in.Jf) > len(stub)) {
				t.Errorf("instruction %d jumps past the filter's start", i)
			}
		}
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Error("seccomp not enabled")
	}
	for _, want := range []struct {
		list []string
		item string
	}{
		{f.Actions, "SCMP_ACT_ERRNO"}, {f.Operators, "SCMP_CMP_MASKED_EQ"}, {f.Archs, "SCMP_ARCH_X86_64"},
		{f.KnownFlags, "SECCOMP_FILTER_FLAG_LOG"}, {f.SupportedFlags, "SECCOMP_FILTER_FLAG_LOG"},
	} {
		if !slices.Contains(want.list, want.item) {
			t.Errorf("%q missing from %v", want.item, want.list)
		}
	}
	if slices.Contains(f.Actions, "SCMP_ACT_NOTIFY") || slices.Contains(f.SupportedFlags, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
		t.Error("features claim what Load refuses")
	}
}
