// Package spawn starts berth's container init with package syscall alone:
// the read-only mount of the init binary it is exec'd through, its
// environment, and a spare's fork and exec. It also starts the spare of a
// `berth runtime create` or `run` while the binary initialises (early.go).
//
// Why syscall alone: Go initialises a package once its imports are, in
// import-path order among those ready. A package importing os or x/sys/unix
// waits behind the binary's crypto, compression and protobuf packages (≈ 10
// ms after exec here); this one, and spawn/early, which calls StartEarly,
// are initialised ≈ 5–7 ms after exec. Package launch wraps it in os types
// for the rest of the runtime.
package spawn

import (
	"syscall"
	"unsafe"
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
const SpareFlags = syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET

// DefaultArgs are the init's arguments unless the runtime is told others.
var DefaultArgs = []string{"berth", "init"}

// DefaultRoot is the runtime's state root unless --root says.
const DefaultRoot = "/run/berth/runtime"

// Env is the init's environment: its fds, the timing switch, and Go
// runtime settings. GODEBUG containermaxprocs=0: since Go 1.25 the runtime
// opens its cgroup's cpu.cfs_quota_us and cpu.cfs_period_us at start and
// keeps them open to follow the CPU limit; an init started ahead (a
// spare) would hold the host's until its exec, a host fd in the
// container's init (TestNoHostFDOrCwdLeak).
func Env(fds string) []string {
	env := []string{FDsEnv + "=" + fds, "GODEBUG=containermaxprocs=0"}
	if v, ok := syscall.Getenv(TimingEnv); ok && v != "" {
		env = append(env, TimingEnv+"="+v)
	}
	return env
}

// Start starts the init binary open at exe (args: its argv) as a spare in
// new SpareFlags namespaces, in this process's cgroups, with nothing of
// this process but its end of a new sync socketpair, the binary, and
// /dev/null as its stdio. It returns the init's pid and this process's end
// of the socketpair. mode is the spare's: "warm" (it will wait, and decodes
// a sample config meanwhile) or "eager" (it gets its config at once).
func Start(exe int, args []string, mode string) (pid, sock int, err error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, -1, errorf("start a spare init", err)
	}
	defer syscall.Close(pair[1])
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Close(pair[0])
		return 0, -1, errorf("start a spare init", err)
	}
	defer syscall.Close(null)
	// fds: sync 3, exe 4. The binary is exec'd through its number in the
	// child (see ociruntime's launchInit for why).
	pid, err = syscall.ForkExec("/proc/self/fd/4", args, &syscall.ProcAttr{
		Dir:   "/",
		Env:   append(Env("3,-1,-1,0,4"), SpareEnv+"="+mode),
		Files: []uintptr{uintptr(null), uintptr(null), uintptr(null), uintptr(pair[1]), uintptr(exe)},
		Sys:   &syscall.SysProcAttr{Cloneflags: SpareFlags, Setsid: true},
	})
	if err != nil {
		syscall.Close(pair[0])
		return 0, -1, errorf("start a spare init", err)
	}
	return pid, pair[0], nil
}

// Linux's open_tree (5.2) and mount_setattr (5.12): the same numbers on
// every architecture, as all system calls added since 5.1.
const (
	sysOpenTree      = 428
	sysMountSetattr  = 442
	openTreeClone    = 0x1
	atEmptyPath      = 0x1000
	mountAttrRdonly  = 0x1
	mountAttrNosuid  = 0x2
	mountAttrNodev   = 0x4
	mountAttrVersion = 32 // sizeof(struct mount_attr)
)

type mountAttr struct{ set, clr, propagation, usernsFD uint64 }

// DetachedReadOnly makes a detached, read-only, nosuid, nodev bind mount of
// the file at path and returns an O_PATH descriptor of it (close-on-exec):
// a file to exec that a process running it cannot write through
// (CVE-2019-5736), and no copy of it.
func DetachedReadOnly(path string) (int, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	cwd := -100 // AT_FDCWD
	fd, _, e := syscall.Syscall(sysOpenTree, uintptr(cwd), uintptr(unsafe.Pointer(p)), openTreeClone|syscall.O_CLOEXEC)
	if e != 0 {
		return -1, errorf("open_tree "+path, e)
	}
	attr := mountAttr{set: mountAttrRdonly | mountAttrNodev | mountAttrNosuid}
	empty, _ := syscall.BytePtrFromString("")
	if _, _, e := syscall.Syscall6(sysMountSetattr, fd, uintptr(unsafe.Pointer(empty)), atEmptyPath, uintptr(unsafe.Pointer(&attr)), mountAttrVersion, 0); e != 0 {
		syscall.Close(int(fd))
		return -1, errorf("mount_setattr "+path, e)
	}
	return int(fd), nil
}

// spawnError is an error with what was being done; errors.Is reaches the
// errno. (Package fmt is not initialised this early.)
type spawnError struct {
	op  string
	err error
}

func (e *spawnError) Error() string { return e.op + ": " + e.err.Error() }
func (e *spawnError) Unwrap() error { return e.err }

func errorf(op string, err error) error { return &spawnError{op, err} }
