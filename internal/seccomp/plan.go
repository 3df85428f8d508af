package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// Action is a validated seccomp action: one of the SCMP_ACT_* kinds and,
// for ERRNO and TRACE, the value the syscall returns.
type Action struct {
	Kind  specs.LinuxSeccompAction
	Errno uint
}

func (a Action) String() string {
	if a.Kind == specs.ActErrno || a.Kind == specs.ActTrace {
		return fmt.Sprintf("%s(%d)", a.Kind, a.Errno)
	}
	return string(a.Kind)
}

// Cond is one validated argument comparison.
type Cond struct {
	Index    uint
	Op       specs.LinuxSeccompOperator
	Value    uint64
	ValueTwo uint64
}

// Rule is one validated syscall rule. Conds are ANDed, except that when
// one argument index appears more than once the conditions are ORed: each
// becomes a rule of its own (what runc does, and what profiles written for
// it rely on).
type Rule struct {
	Index  int // in linux.seccomp.syscalls, for error messages
	Names  []string
	Action Action
	Conds  []Cond
}

// Plan is a LinuxSeccomp validated and normalised: every name is known to
// the spec, every errno defaulted. It is what the compiler turns into BPF.
type Plan struct {
	Default Action
	Arches  []specs.Arch
	Flags   []specs.LinuxSeccompFlag
	Rules   []Rule
}

const maxArgs = 6 // a syscall has at most six arguments

var actions = map[specs.LinuxSeccompAction]bool{
	specs.ActKill:        true,
	specs.ActKillProcess: true,
	specs.ActKillThread:  true,
	specs.ActTrap:        true,
	specs.ActErrno:       true,
	specs.ActTrace:       true,
	specs.ActAllow:       true,
	specs.ActLog:         true,
	specs.ActNotify:      true,
}

var operators = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual:     true,
	specs.OpLessThan:     true,
	specs.OpLessEqual:    true,
	specs.OpEqualTo:      true,
	specs.OpGreaterEqual: true,
	specs.OpGreaterThan:  true,
	specs.OpMaskedEqual:  true,
}

// archNames maps the spec's SCMP_ARCH_* names to libseccomp's.
var archNames = map[specs.Arch]string{
	specs.ArchX86:         "x86",
	specs.ArchX86_64:      "amd64",
	specs.ArchX32:         "x32",
	specs.ArchARM:         "arm",
	specs.ArchAARCH64:     "arm64",
	specs.ArchMIPS:        "mips",
	specs.ArchMIPS64:      "mips64",
	specs.ArchMIPS64N32:   "mips64n32",
	specs.ArchMIPSEL:      "mipsel",
	specs.ArchMIPSEL64:    "mipsel64",
	specs.ArchMIPSEL64N32: "mipsel64n32",
	specs.ArchPPC:         "ppc",
	specs.ArchPPC64:       "ppc64",
	specs.ArchPPC64LE:     "ppc64le",
	specs.ArchS390:        "s390",
	specs.ArchS390X:       "s390x",
	specs.ArchPARISC:      "parisc",
	specs.ArchPARISC64:    "parisc64",
	specs.ArchRISCV64:     "riscv64",
	specs.ArchLOONGARCH64: "loong64",
	specs.ArchM68K:        "m68k",
	specs.ArchSH:          "sh",
	specs.ArchSHEB:        "sheb",
}

// The filter flags the spec names. TSYNC is accepted and has no effect:
// the filter is loaded by the thread that then calls execve, which ends
// every other thread.
var flags = map[specs.LinuxSeccompFlag]bool{
	specs.LinuxSeccompFlagLog:                           true,
	specs.LinuxSeccompFlagSpecAllow:                     true,
	specs.LinuxSeccompFlagWaitKillableRecv:              true,
	specs.LinuxSeccompFlag("SECCOMP_FILTER_FLAG_TSYNC"): true,
}

// Validate checks cfg without compiling it. Errors are errdefs.Invalid (or
// NotImplemented for what berth cannot do yet) and name the field, as in
// `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
func Validate(cfg *specs.LinuxSeccomp) error {
	_, err := NewPlan(cfg)
	return err
}

// NewPlan validates cfg and normalises it into a Plan. It is pure: it
// needs neither libseccomp nor the kernel. A nil cfg gives a nil Plan.
func NewPlan(cfg *specs.LinuxSeccomp) (*Plan, error) {
	if cfg == nil {
		return nil, nil
	}
	const f = "linux.seccomp"
	if cfg.ListenerPath != "" || len(cfg.ListenerMetadata) > 0 {
		return nil, errdefs.NotImplemented(fmt.Errorf("%s.listenerPath: seccomp user notification is not supported yet", f))
	}
	def, err := action(f+".defaultAction", cfg.DefaultAction, cfg.DefaultErrnoRet, f+".defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	p := &Plan{Default: def}
	seen := map[specs.Arch]bool{}
	for i, a := range cfg.Architectures {
		if _, ok := archNames[a]; !ok {
			return nil, errdefs.Invalidf("%s.architectures[%d]: unknown architecture %q", f, i, a)
		}
		if !seen[a] {
			seen[a] = true
			p.Arches = append(p.Arches, a)
		}
	}
	for i, fl := range cfg.Flags {
		if !flags[fl] {
			return nil, errdefs.Invalidf("%s.flags[%d]: unknown flag %q", f, i, fl)
		}
		p.Flags = append(p.Flags, fl)
	}
	for i, sc := range cfg.Syscalls {
		sf := fmt.Sprintf("%s.syscalls[%d]", f, i)
		if len(sc.Names) == 0 {
			return nil, errdefs.Invalidf("%s.names: empty", sf)
		}
		for j, n := range sc.Names {
			if n == "" {
				return nil, errdefs.Invalidf("%s.names[%d]: empty name", sf, j)
			}
		}
		act, err := action(sf+".action", sc.Action, sc.ErrnoRet, sf+".errnoRet")
		if err != nil {
			return nil, err
		}
		r := Rule{Index: i, Names: sc.Names, Action: act}
		for j, a := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", sf, j)
			if a.Index >= maxArgs {
				return nil, errdefs.Invalidf("%s.index: %d is not an argument index (0 to %d)", af, a.Index, maxArgs-1)
			}
			if !operators[a.Op] {
				return nil, errdefs.Invalidf("%s.op: unknown operator %q", af, a.Op)
			}
			r.Conds = append(r.Conds, Cond{Index: a.Index, Op: a.Op, Value: a.Value, ValueTwo: a.ValueTwo})
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

func action(field string, a specs.LinuxSeccompAction, errnoRet *uint, errnoField string) (Action, error) {
	if a == "" {
		return Action{}, errdefs.Invalidf("%s: empty", field)
	}
	if !actions[a] {
		return Action{}, errdefs.Invalidf("%s: unknown action %q", field, a)
	}
	if a == specs.ActNotify {
		return Action{}, errdefs.NotImplemented(fmt.Errorf("%s: %s (seccomp user notification) is not supported yet", field, a))
	}
	out := Action{Kind: a}
	switch a {
	case specs.ActErrno, specs.ActTrace:
		out.Errno = uint(unix.EPERM)
		if errnoRet != nil {
			if *errnoRet > 0xffff {
				return Action{}, errdefs.Invalidf("%s: %d does not fit in 16 bits", errnoField, *errnoRet)
			}
			out.Errno = *errnoRet
		}
	default:
		if errnoRet != nil {
			return Action{}, errdefs.Invalidf("%s: only valid with %s or %s, not %s", errnoField, specs.ActErrno, specs.ActTrace, a)
		}
	}
	return out, nil
}
