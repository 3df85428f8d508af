package ociruntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/ociruntime/launch"
	"github.com/berth/berth/internal/seccomp/bpf"
)

// seccompProgram is a seccomp filter compiled by the parent (Create), ready
// for the init to load with one seccomp(2) call: libseccomp's ~10 ms
// compile of Docker's profile stays out of every start, and the init does
// no allocation-heavy work after the spec's rlimits (RLIMIT_AS) are set.
// Loading it needs no libseccomp, so the static init links it.
type seccompProgram = bpf.Program

// compileSeccomp is the seam to internal/seccomp, which links libseccomp
// (cgo; seccomp_cgo.go sets it). It caches in memory, and on disk under
// cacheDir when that is not empty.
var compileSeccomp = func(cfg *specs.LinuxSeccomp, cacheDir string) (*seccompProgram, error) {
	return nil, errdefs.NotImplemented(errors.New("linux.seccomp: seccomp is not built into this berth (built without cgo)"))
}

type initFDs struct{ sync, fifo, console, preserved, exe int }

func parseInitFDs(s string) (initFDs, error) {
	f := initFDs{exe: -1}
	parts := strings.Split(s, ",")
	if len(parts) != 4 && len(parts) != 5 {
		return f, fmt.Errorf("%s=%q: want 4 or 5 numbers", launch.FDsEnv, s)
	}
	n := []int{-1, -1, -1, -1, -1}
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			return f, fmt.Errorf("%s=%q: %w", launch.FDsEnv, s, err)
		}
		n[i] = v
	}
	return initFDs{n[0], n[1], n[2], n[3], n[4]}, nil
}

// InitMain is `berth init`, the container's init. It must run before
// anything else of the program (no goroutines of its own started). It never
// returns: it execs the container's process or exits.
func InitMain() {
	runtime.LockOSThread() // setns, creds and caps below are per thread
	tmark("init: main")
	fds, err := parseInitFDs(os.Getenv(launch.FDsEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: not started by the runtime:", err)
		os.Exit(2)
	}
	if fds.exe > 2 {
		unix.Close(fds.exe) // the init binary's mount: nothing to keep of it
	}
	conn := newSyncConn(os.NewFile(uintptr(fds.sync), "sync"))
	if mode := os.Getenv(launch.SpareEnv); mode != "" {
		if fds, err = awaitAdoption(fds, mode == "warm"); err != nil {
			conn.send(errorMsg(err))
			os.Exit(1)
		}
		tmark("init: adopted")
	}
	path, argv, env, fifo, err := initContainer(conn, fds)
	if err != nil {
		conn.send(errorMsg(err))
		os.Exit(1)
	}
	// Wait at the start barrier: one byte from `start` through exec.fifo
	// (an exec'd process has none: it runs at once).
	var b [1]byte
	for fifo >= 0 {
		n, err := unix.Read(fifo, b[:])
		if err == unix.EINTR {
			continue
		}
		if n != 1 || err != nil {
			os.Exit(1)
		}
		break
	}
	err = syscall.Exec(path, argv, env)
	fmt.Fprintf(os.Stderr, "berth init: exec %s: %v\n", argv[0], err)
	os.Exit(127)
}

func initContainer(conn *syncConn, fds initFDs) (path string, argv, env []string, fifo int, err error) {
	m, err := conn.expect(msgConfig)
	if err != nil {
		return "", nil, nil, -1, err
	}
	tmark("init: config received")
	cfg := m.Init
	if cfg == nil || cfg.Spec == nil || cfg.Spec.Process == nil {
		return "", nil, nil, -1, errors.New("sync: config without a spec")
	}
	if cfg.Exec != nil {
		path, env, err := initExec(conn, cfg, fds)
		return path, cfg.Spec.Process.Args, env, -1, err
	}
	s, p := cfg.Spec, cfg.Spec.Process
	// Work from the bundle, as a forked init starts (a spare starts in /):
	// relative paths of hooks and mounts mean the same either way.
	if err := unix.Chdir(cfg.Bundle); err != nil {
		return "", nil, nil, -1, fmt.Errorf("bundle: %w", err)
	}
	unix.Umask(0)
	lastCap := lastCapability()
	if cfg.NewCgroup {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return "", nil, nil, -1, fmt.Errorf("linux.namespaces: new cgroup namespace: %w", err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return "", nil, nil, -1, err
		}
	}
	// Sysctls go in before the rootfs is set up: readonlyPaths make the
	// container's /proc/sys read-only. Validate admits only namespaced
	// keys, and the init already lives in the new namespaces, so the host's
	// /proc/sys reaches the container's values.
	for k, v := range s.Linux.Sysctl {
		name := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(name, []byte(v), 0); err != nil {
			return "", nil, nil, -1, fmt.Errorf("linux.sysctl[%q]: %w", k, err)
		}
	}
	if err := prepareRootfs(cfg); err != nil {
		return "", nil, nil, -1, err
	}
	tmark("init: rootfs prepared")
	//lint:ignore SA1019 prestart is deprecated but still part of the spec
	if s.Hooks != nil && len(s.Hooks.Prestart)+len(s.Hooks.CreateRuntime) > 0 {
		if err := conn.send(syncMsg{Type: msgHooks}); err != nil {
			return "", nil, nil, -1, err
		}
		if _, err := conn.expect(msgHooksDone); err != nil {
			return "", nil, nil, -1, err
		}
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		if err := runHooks(context.Background(), "createContainer", s.Hooks.CreateContainer, cfg.State); err != nil {
			return "", nil, nil, -1, err
		}
	}
	if err := enterRootfs(cfg); err != nil {
		return "", nil, nil, -1, err
	}
	tmark("init: rootfs entered")
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return "", nil, nil, -1, fmt.Errorf("hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return "", nil, nil, -1, fmt.Errorf("domainname: %w", err)
		}
	}
	if s.Root.Readonly {
		// The cwd may need creating, which a read-only root forbids later.
		if err := os.MkdirAll(p.Cwd, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", nil, nil, -1, fmt.Errorf("process.cwd: %w", err)
		}
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err != nil {
			return "", nil, nil, -1, err
		}
		flags := statfsToMountFlags(st.Flags) | unix.MS_RDONLY | unix.MS_REMOUNT | unix.MS_BIND
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return "", nil, nil, -1, fmt.Errorf("root.readonly: %w", err)
		}
	}
	path, env, err = finishProcess(cfg, fds, lastCap)
	if err != nil {
		return "", nil, nil, -1, err
	}
	tmark("init: ready")
	if err := conn.send(syncMsg{Type: msgReady}); err != nil {
		return "", nil, nil, -1, err
	}
	return path, p.Args, env, fds.fifo, nil
}

// finishProcess is the last part of the setup, shared by a container's init
// and an exec'd process: console, env, cwd, rlimits, closing every fd the
// process must not inherit, seccomp, user and capabilities, umask,
// no_new_privs. It returns the binary to exec and its environment.
func finishProcess(cfg *initConfig, fds initFDs, lastCap int) (string, []string, error) {
	p := cfg.Spec.Process
	if p.Terminal {
		if err := setupConsole(fds.console, p); err != nil {
			return "", nil, fmt.Errorf("process.terminal: %w", err)
		}
	}
	env := processEnv(p)
	if err := enterCwd(p.Cwd, p.User); err != nil {
		return "", nil, err
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return "", nil, err
	}
	for i, rl := range p.Rlimits {
		if err := setRlimit(i, rl); err != nil {
			return "", nil, err
		}
	}
	// Nothing of the runtime's may reach the container: every fd above the
	// preserved ones closes at exec (CVE-2024-21626).
	if err := unix.CloseRange(uint(3+fds.preserved), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return "", nil, fmt.Errorf("close_range: %w", err)
	}
	// Without no_new_privs the kernel lets only CAP_SYS_ADMIN load a
	// filter: load it now, while the init still has it (the filter must then
	// allow the setuid/capset calls that follow, as Docker's does). With
	// no_new_privs it is the last step, below, as runc does.
	if cfg.Seccomp != nil && !p.NoNewPrivileges {
		if err := cfg.Seccomp.Load(); err != nil {
			return "", nil, err
		}
	}
	if err := applyUser(p, lastCap); err != nil {
		return "", nil, err
	}
	unix.Umask(0o022)
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", nil, fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	if cfg.Seccomp != nil && p.NoNewPrivileges {
		if err := cfg.Seccomp.Load(); err != nil {
			return "", nil, err
		}
	}
	return path, env, nil
}

func lastCapability() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 40
}

func setOOMScoreAdj(v int) error {
	cur, _ := os.ReadFile("/proc/self/oom_score_adj")
	err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return errdefs.ResourceLimited(fmt.Errorf("process.oomScoreAdj %d: lower than the current %s, which needs CAP_SYS_RESOURCE: the host lacks CAP_SYS_RESOURCE", v, strings.TrimSpace(string(cur))))
	}
	return fmt.Errorf("process.oomScoreAdj %d: %w", v, err)
}

func setRlimit(i int, rl specs.POSIXRlimit) error {
	res := rlimitNames[rl.Type]
	lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
	err := syscall.Setrlimit(res, &lim)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) {
		var cur syscall.Rlimit
		syscall.Getrlimit(res, &cur)
		return errdefs.ResourceLimited(fmt.Errorf("process.rlimits[%d]: rlimit %s %d:%d above the hard limit %d this process may raise to: the host lacks CAP_SYS_RESOURCE",
			i, rl.Type, rl.Soft, rl.Hard, cur.Max))
	}
	return fmt.Errorf("process.rlimits[%d]: rlimit %s %d:%d: %w", i, rl.Type, rl.Soft, rl.Hard, err)
}

func processEnv(p *specs.Process) []string {
	env := append([]string{}, p.Env...)
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	return append(env, "HOME="+homeOf(int(p.User.UID)))
}

// homeOf finds uid's home in the container's /etc/passwd ("/" if none).
func homeOf(uid int) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "/"
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 6 && f[2] == strconv.Itoa(uid) && f[5] != "" {
			return f[5]
		}
	}
	return "/"
}

// enterCwd makes cwd, creating it if missing, and checks the result is
// inside the container's root (a leaked fd's /proc/self/fd/N is not).
func enterCwd(cwd string, u specs.User) error {
	if err := os.MkdirAll(cwd, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("process.cwd: %w", err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("process.cwd %s: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return errdefs.Forbidden(fmt.Errorf("process.cwd %s: resolves outside the container's root", cwd))
	}
	return nil
}

// lookPath finds args[0] in the container's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", errdefs.NotFound(fmt.Errorf("process.args[0]: %w", err))
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errdefs.NotFound(fmt.Errorf("process.args[0]: %q: executable file not found in $PATH", name))
}
