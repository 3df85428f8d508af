package ociruntime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/ociruntime/launch"
)

// ExecOpts are exec's options, as runc's flags.
type ExecOpts struct {
	// Stdio of the process when it has no terminal; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	ConsoleSocket         string // unix socket that receives the pty master (process.terminal)
	PidFile               string
}

// execConfig is what an exec-mode init needs besides the process: the
// container's mount namespace, which it joins itself (see Exec).
type execConfig struct {
	MountNSFD int `json:"mountNSFD"` // the init's fd of the container's mount namespace, -1 if it has none
}

// nsProcName maps runtime-spec namespace types to their /proc/<pid>/ns names.
var nsProcName = map[string]string{
	"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
	"user": "user", "cgroup": "cgroup", "time": "time",
}

// Exec runs process p in container id, which must be created or running:
// the process joins every namespace of the container's init and its
// cgroup, and gets the container's seccomp filter; the rest (user,
// capabilities, no_new_privs, rlimits, env, cwd, terminal) is p's. The
// returned Process is a child of this process.
//
// The parent joins the namespaces other than the mount namespace on a
// locked thread and forks `berth init` from it (born in the container's
// pid namespace and cgroup); the init joins the mount namespace itself,
// after exec: the berth binary may be linked dynamically, and its loader
// and libraries are the host's, not the container's.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (_ *Process, retErr error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	switch rec.Status {
	case StatusCreated, StatusRunning:
	default:
		return nil, errdefs.Conflictf("container %q is %s: cannot exec in it", id, rec.Status)
	}
	if rec.Config == nil || rec.Config.Linux == nil {
		return nil, fmt.Errorf("container %q: state has no config", id)
	}
	if p == nil || len(p.Args) == 0 {
		return nil, errdefs.Invalidf("process.args: must not be empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	// A user namespace is joined by berth-nsenter, a single-threaded C
	// program: setns(CLONE_NEWUSER) is refused to any Go process.
	var nsenter string
	for _, ns := range rec.Config.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			if nsenter, err = r.nsenterPath(); err != nil {
				return nil, err
			}
			if nsenter == "" {
				return nil, errdefs.NotImplemented(fmt.Errorf("container %q has a user namespace: exec into it needs berth-nsenter, which this berth does not carry (build it with `make build`)", id))
			}
		}
	}
	s := *rec.Config
	s.Process = p
	s.Hooks = nil
	if err := Validate(&s); err != nil {
		return nil, err
	}
	if p.Terminal && o.ConsoleSocket == "" {
		return nil, errdefs.Invalidf("process.terminal: a console socket (--console-socket) is required")
	}
	var filter *seccompProgram
	if s.Linux.Seccomp != nil {
		if filter, err = compileSeccomp(s.Linux.Seccomp, r.SeccompCache); err != nil {
			return nil, err
		}
	}

	// The init's namespaces, opened once and checked to still be the
	// init's (its pid may be recycled between load and open).
	var joins []nsJoin
	var mountNS *os.File
	defer func() {
		if mountNS != nil {
			mountNS.Close()
		}
	}()
	var userNS *os.File
	var nsFiles []*os.File
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	for i, ns := range s.Linux.Namespaces {
		t := string(ns.Type)
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		name, ok := nsProcName[t]
		if !ok || t == "time" {
			return nil, errdefs.NotImplemented(fmt.Errorf("%s: cannot join a %s namespace", field, t))
		}
		f, err := os.Open("/proc/" + strconv.Itoa(rec.Pid) + "/ns/" + name)
		if err != nil {
			return nil, errdefs.Conflictf("container %q: its init is gone: %v", id, err)
		}
		if t == "mount" {
			mountNS = f
			continue
		}
		if t == "user" {
			userNS = f
			nsFiles = append(nsFiles, f)
			continue
		}
		nsFiles = append(nsFiles, f)
		joins = append(joins, nsJoin{field: field, typ: t, path: "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))})
	}
	if !alive(rec.Pid, rec.StartTime) {
		return nil, errdefs.Conflictf("container %q is not running", id)
	}
	// The cgroup namespace is joined after the cgroup (as the init made it).
	sort.SliceStable(joins, func(i, j int) bool { return joins[j].typ == "cgroup" && joins[i].typ != "cgroup" })

	l, err := r.prepareInit(o.ConsoleSocket, p.Terminal)
	if err != nil {
		return nil, err
	}
	defer l.close()
	parentSock, childSock, console, exe, args := l.parent, l.child, l.console, l.exe, l.args
	var extra []*os.File
	fdOf := func(f *os.File) int {
		if f == nil {
			return -1
		}
		extra = append(extra, f)
		return 2 + len(extra)
	}
	fds := fmt.Sprintf("%d,%d,%d,%d", fdOf(childSock), -1, fdOf(console), 0)
	mountFD := fdOf(mountNS)
	// The init binary is exec'd through its number in the child (see Create).
	exeFD := fdOf(exe)
	fds += "," + strconv.Itoa(exeFD)
	path, env := "/proc/self/fd/"+strconv.Itoa(exeFD), launch.Env(fds)
	if userNS != nil {
		// berth-nsenter joins the user namespace, becomes its root and
		// execs the init from exeFD.
		helper, err := launch.OpenBinary(nsenter)
		if err != nil {
			return nil, fmt.Errorf("berth-nsenter: %w", err)
		}
		defer helper.Close()
		userFD := fdOf(userNS)
		path = "/proc/self/fd/" + strconv.Itoa(fdOf(helper))
		env = append(env, fmt.Sprintf("_BERTH_NSENTER=%d,%d", userFD, exeFD))
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        args,
		Env:         env,
		Dir:         "/",
		Stdin:       o.Stdin,
		Stdout:      o.Stdout,
		Stderr:      o.Stderr,
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	cg, err := newCgroupManager(rec.CgroupPath)
	if err != nil {
		return nil, err
	}
	bornInCgroup := false
	joinCgroup := func() (func() error, error) {
		leave, err := cg.JoinThread()
		if errors.Is(err, errdefs.ErrNotImplemented) {
			return func() error { return nil }, nil
		}
		bornInCgroup = err == nil
		return leave, err
	}
	if err := startJoined(cmd, joins, joinCgroup); err != nil {
		return nil, fmt.Errorf("start the exec'd process: %w", err)
	}
	proc := &Process{proc: cmd.Process}
	defer func() {
		if retErr != nil {
			cmd.Process.Kill()
			cmd.Process.Wait()
		}
	}()
	childSock.Close()
	pid := cmd.Process.Pid
	if !bornInCgroup {
		if err := cg.Apply(pid); err != nil {
			return nil, fmt.Errorf("join container %q's cgroup: %w", id, err)
		}
	}
	conn := newSyncConn(parentSock)
	cfg := &initConfig{Spec: specForInit(&s), Rootfs: rec.Rootfs, Bundle: rec.Bundle, HostMountNS: mountNS == nil,
		State: rec.State, Seccomp: filter, Exec: &execConfig{MountNSFD: mountFD}}
	if err := conn.send(syncMsg{Type: msgConfig, Init: cfg}); err != nil {
		return nil, fmt.Errorf("sync with the exec'd process: %w", err)
	}
	if _, err := conn.expect(msgReady); err != nil {
		if errdefs.ClassOf(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	log.From(ctx).Debug("process exec'd", "id", id, "pid", pid)
	return proc, nil
}

// initExec is the init's side of Exec: join the container's mount
// namespace (or chroot into its rootfs when it shares the host's), then
// finish the process as a container's init does.
func initExec(conn *syncConn, cfg *initConfig, fds initFDs) (string, []string, error) {
	p := cfg.Spec.Process
	unix.Umask(0)
	lastCap := lastCapability()
	if p.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return "", nil, err
		}
	}
	if cfg.Exec.MountNSFD >= 0 {
		// setns(CLONE_NEWNS) refuses a thread sharing its fs_struct.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return "", nil, fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Setns(cfg.Exec.MountNSFD, unix.CLONE_NEWNS); err != nil {
			return "", nil, fmt.Errorf("join the container's mount namespace: %w", err)
		}
		unix.Close(cfg.Exec.MountNSFD)
		// setns leaves root and cwd at the namespace's root, the rootfs.
	} else {
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return "", nil, fmt.Errorf("chroot %s: %w", cfg.Rootfs, err)
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return "", nil, err
	}
	path, env, err := finishProcess(cfg, fds, lastCap)
	if err != nil {
		return "", nil, err
	}
	if err := conn.send(syncMsg{Type: msgReady}); err != nil {
		return "", nil, err
	}
	return path, env, nil
}

// ContainerProcess returns a copy of container id's process (from its
// config), the base runc's exec builds on when no --process is given.
func (r *Runtime) ContainerProcess(ctx context.Context, id string) (*specs.Process, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if rec.Config == nil || rec.Config.Process == nil {
		return nil, fmt.Errorf("container %q: state has no process", id)
	}
	b, err := json.Marshal(rec.Config.Process)
	if err != nil {
		return nil, err
	}
	var p specs.Process
	return &p, json.Unmarshal(b, &p)
}
