// Package launch starts berth's container init (cmd/berth-init): it makes
// the init binary safe to exec (OpenBinary), gives the init its
// environment (Env), starts spare inits (StartSpare), and starts one as the
// `berth runtime` process itself starts (early.go), before the rest of the
// binary has initialised. It is a leaf package, with nothing of the runtime
// but what these need, so that Go initialises it among the first.
// ociruntime owns what an init does once started.
package launch

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Environment variables the runtime sets for its init.
const (
	// FDsEnv lists the init's file descriptors: sync socket, exec.fifo,
	// console, preserved count, init binary (ociruntime parses it).
	FDsEnv = "_BERTH_INIT_FDS"
	// SpareEnv marks an init started as a spare: "warm" or "eager".
	SpareEnv = "_BERTH_INIT_SPARE"
	// TimingEnv switches on the runtime's phase marks (benchmarking).
	TimingEnv = "BERTH_RUNTIME_TIMING"
)

// SpareFlags are the namespaces a spare is born in: those of a Docker
// container but the mount namespace, which it makes at adoption.
const SpareFlags = unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// DefaultArgs are the init's arguments unless the runtime is told others.
var DefaultArgs = []string{"berth", "init"}

// Env is the init's environment: its fds, the timing switch, and Go
// runtime settings. GODEBUG containermaxprocs=0: since Go 1.25 the runtime
// opens its cgroup's cpu.cfs_quota_us and cpu.cfs_period_us at start and
// keeps them open to follow the CPU limit; an init started ahead (a
// spare) would hold the host's until its exec, a host fd in the
// container's init (TestNoHostFDOrCwdLeak).
func Env(fds string) []string {
	env := []string{FDsEnv + "=" + fds, "GODEBUG=containermaxprocs=0"}
	if v := os.Getenv(TimingEnv); v != "" {
		env = append(env, TimingEnv+"="+v)
	}
	return env
}

// A Spare is an init started ahead of need, waiting to be adopted
// (ociruntime's spare.go has the protocol).
type Spare struct {
	Process *os.Process
	Sock    *os.File // this process's end of the sync socketpair
}

// StartSpare starts the init binary at initPath (args: its argv, nil for
// DefaultArgs) as a spare in new SpareFlags namespaces, in this process's
// cgroups, with nothing of this process but its sync socket, the binary
// and /dev/null as its stdio. A warm spare, which will wait, decodes a
// sample config meanwhile; an eager one gets its config at once.
//
// It uses os.StartProcess, not os/exec, which would make this package
// wait for path/filepath's initialisation (early.go).
func StartSpare(initPath string, args []string, warm bool) (*Spare, error) {
	if len(args) == 0 {
		args = DefaultArgs
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start a spare init: %w", err)
	}
	parent, child := os.NewFile(uintptr(pair[0]), "sync"), os.NewFile(uintptr(pair[1]), "sync-child")
	defer child.Close()
	exe, err := OpenBinary(initPath)
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("init binary: %w", err)
	}
	defer exe.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start a spare init: %w", err)
	}
	defer null.Close()
	mode := "eager"
	if warm {
		mode = "warm"
	}
	// fds: sync 3, exe 4. The binary is exec'd through its number in the
	// child (see ociruntime's launchInit for why).
	p, err := os.StartProcess("/proc/self/fd/4", args, &os.ProcAttr{
		Dir:   "/",
		Env:   append(Env("3,-1,-1,0,4"), SpareEnv+"="+mode),
		Files: []*os.File{null, null, null, child, exe},
		Sys: &syscall.SysProcAttr{
			Cloneflags: SpareFlags,
			Setsid:     true,
		},
	})
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start a spare init: %w", err)
	}
	return &Spare{Process: p, Sock: parent}, nil
}

// Discard ends a spare that no container took, or one whose adoption
// failed.
func (sp *Spare) Discard() {
	sp.Sock.Close()
	sp.Process.Kill()
	sp.Process.Wait()
}
