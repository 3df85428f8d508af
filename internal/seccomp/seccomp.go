// Package seccomp compiles a runtime-spec LinuxSeccomp into a BPF filter
// with libseccomp and loads it on the calling thread.
//
// It is the one package of the runtime that links C (libseccomp, through
// libseccomp-golang). The work is split as everywhere in berth: NewPlan
// validates and normalises the spec without touching libseccomp (pure,
// table-tested), build turns a Plan into a libseccomp filter, and a
// Program (the generated BPF, cached per profile) is loaded with one
// seccomp(2) call.
package seccomp

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// Load builds the filter cfg describes and loads it into the kernel for
// the calling OS thread (and the program that thread execs). A nil cfg
// loads nothing. It is Compile followed by Program.Load; a runtime that
// forks its init should Compile in the parent (cached) and Load the
// Program in the child instead.
//
// Preconditions: the caller has locked its goroutine to its OS thread
// (runtime.LockOSThread) and, unless it holds CAP_SYS_ADMIN, set
// no_new_privs; Load does not set no_new_privs itself, so that
// process.noNewPrivileges stays the spec's decision. Load should be the
// last step before execve: syscalls the filter denies are denied to the
// rest of the init code too.
func Load(cfg *specs.LinuxSeccomp) error {
	p, err := Compile(cfg)
	if err != nil {
		return err
	}
	return p.Load()
}

// Export returns the BPF program (an array of struct sock_filter, in host
// byte order) that Load would install for cfg, compiled afresh.
func Export(cfg *specs.LinuxSeccomp) ([]byte, error) {
	p, err := NewPlan(cfg)
	if err != nil || p == nil {
		return nil, err
	}
	return exportPlan(p)
}

// exportPlan compiles p with libseccomp and returns the BPF program, with
// the ENOSYS stub (enosys.go) in front.
func exportPlan(p *Plan) ([]byte, error) {
	f, err := build(p)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	// libseccomp 2.5 can only export to a file descriptor.
	fd, err := unix.MemfdCreate("berth-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "berth-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	prog, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	prog = prependStub(enosysStub(p), prog)
	if n := len(prog) / 8; n > unix.BPF_MAXINSNS {
		return nil, errdefs.Invalidf("linux.seccomp: the filter has %d instructions, more than the kernel's %d", n, unix.BPF_MAXINSNS)
	}
	return prog, nil
}

// Supported reports whether the kernel has seccomp filters and libseccomp
// is usable.
func Supported() bool {
	supportedOnce.Do(func() {
		// PR_GET_SECCOMP fails with EINVAL on a kernel without seccomp.
		if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
			return
		}
		if _, err := libseccomp.GetAPI(); err != nil {
			return
		}
		supported = true
	})
	return supported
}

var (
	supportedOnce sync.Once
	supported     bool
)

// Version is the version of the libseccomp linked in, like "2.5.4".
func Version() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// Skipped lists the syscall names in cfg this libseccomp does not know.
// Load skips them (as runc does): the libseccomp of an older distribution
// lacks syscalls newer than itself, and a profile naming them must still
// load. The runtime may log them.
func Skipped(cfg *specs.LinuxSeccomp) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, sc := range cfg.Syscalls {
		for _, n := range sc.Names {
			if _, err := libseccomp.GetSyscallFromName(n); err != nil && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func build(p *Plan) (_ *libseccomp.ScmpFilter, err error) {
	const f = "linux.seccomp"
	filter, err := libseccomp.NewFilter(scmpAction(p.Default))
	if err != nil {
		return nil, fmt.Errorf("%s.defaultAction: %w", f, err)
	}
	defer func() {
		if err != nil {
			filter.Release()
		}
	}()
	// A binary tree of syscall numbers rather than libseccomp's default
	// linear list: the same decisions, more instructions, but a syscall
	// is found in log(n) steps. That matters at load: the kernel runs the
	// filter for every syscall number of every architecture to build its
	// cache of always-allowed calls. Docker's profile (1264 instructions
	// instead of 1018) loads in 0.35-0.5 ms instead of 1.15 ms here
	// (BenchmarkLoadDefault); every container's init pays it. A
	// libseccomp without the attribute (before 2.5) keeps the list.
	if err := filter.SetOptimize(2); err != nil {
		slog.Debug("seccomp: no binary tree optimisation in this libseccomp", "libseccomp", Version(), "err", err)
	}
	// libseccomp sets no_new_privs on load by default; whether the process
	// gets it is process.noNewPrivileges' call, made by the caller.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: clear no_new_privs attribute: %w", err)
	}
	for i, a := range p.Arches {
		sa, err := libseccomp.GetArchFromString(archNames[a])
		if err == nil {
			err = filter.AddArch(sa)
		}
		if err != nil {
			return nil, errdefs.NotImplemented(fmt.Errorf("%s.architectures[%d]: %s not supported by libseccomp %s: %w", f, i, a, Version(), err))
		}
	}
	for i, fl := range p.Flags {
		var err error
		switch fl {
		case specs.LinuxSeccompFlagLog:
			err = filter.SetLogBit(true)
		case specs.LinuxSeccompFlagSpecAllow:
			err = filter.SetSSB(true)
		case specs.LinuxSeccompFlagWaitKillableRecv:
			err = filter.SetWaitKill(true)
		}
		if err != nil {
			return nil, errdefs.NotImplemented(fmt.Errorf("%s.flags[%d]: %s not supported by libseccomp %s: %w", f, i, fl, Version(), err))
		}
	}
	def := scmpAction(p.Default)
	for _, r := range p.Rules {
		act := scmpAction(r.Action)
		if act == def {
			// libseccomp refuses a rule that repeats the default action;
			// it would change nothing anyway.
			continue
		}
		conds, split, err := conditions(r)
		if err != nil {
			return nil, err
		}
		for _, name := range r.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				slog.Debug("seccomp: skipping a syscall libseccomp does not know", "name", name, "libseccomp", Version())
				continue
			}
			if len(conds) == 0 {
				err = filter.AddRule(call, act)
			} else if split {
				for _, c := range conds {
					if err = filter.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			} else {
				err = filter.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return nil, errdefs.Invalid(fmt.Errorf("%s.syscalls[%d]: add rule for %s: %w", f, r.Index, name, err))
			}
		}
	}
	return filter, nil
}

// conditions converts r's argument comparisons. split is true when an
// argument index repeats: libseccomp cannot AND two comparisons of one
// argument, so each becomes a rule of its own (ORed), as runc does.
func conditions(r Rule) (_ []libseccomp.ScmpCondition, split bool, _ error) {
	var count [maxArgs]int
	var out []libseccomp.ScmpCondition
	for j, c := range r.Conds {
		count[c.Index]++
		if count[c.Index] > 1 {
			split = true
		}
		vals := []uint64{c.Value}
		if c.Op == specs.OpMaskedEqual {
			vals = append(vals, c.ValueTwo) // mask, then the value to equal
		}
		sc, err := libseccomp.MakeCondition(c.Index, scmpOp(c.Op), vals...)
		if err != nil {
			return nil, false, errdefs.Invalid(fmt.Errorf("linux.seccomp.syscalls[%d].args[%d]: %w", r.Index, j, err))
		}
		out = append(out, sc)
	}
	return out, split, nil
}

func scmpAction(a Action) libseccomp.ScmpAction {
	switch a.Kind {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess
	case specs.ActTrap:
		return libseccomp.ActTrap
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(a.Errno))
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(a.Errno))
	case specs.ActAllow:
		return libseccomp.ActAllow
	case specs.ActLog:
		return libseccomp.ActLog
	}
	return libseccomp.ActInvalid // NewPlan admits no other kind
}

func scmpOp(op specs.LinuxSeccompOperator) libseccomp.ScmpCompareOp {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual
	case specs.OpLessThan:
		return libseccomp.CompareLess
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual
	case specs.OpEqualTo:
		return libseccomp.CompareEqual
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual
	}
	return libseccomp.CompareInvalid
}
