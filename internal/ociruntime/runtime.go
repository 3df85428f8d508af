package ociruntime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/ociruntime/initbin"
	"github.com/berth/berth/internal/ociruntime/launch"
)

// DefaultRoot is where container state lives unless Runtime.Root says.
const DefaultRoot = launch.DefaultRoot

// Runtime creates and manages containers whose state lives under Root.
// The zero value is usable.
type Runtime struct {
	Root string // state root (runc --root); DefaultRoot if empty
	// InitPath is the binary exec'd as the container init with InitArgs
	// (default ["berth", "init"]): it must call InitMain. Tests set it, or
	// InitArgs alone, to run their own test binary. Empty: the static init
	// berth embeds (initbin), or without one /proc/self/exe.
	InitPath string
	InitArgs []string
	// SeccompCache is a directory where compiled seccomp filters are kept
	// across processes (`berth runtime` is a fresh process per container).
	// Empty: filters are cached in this process's memory only.
	SeccompCache string
	// Spare keeps a container init started ahead of the next create
	// (spare.go), for SpareTTL after each create it could have served. The
	// monitor, which creates every container of a daemon, sets it.
	Spare  bool
	spares spareSlot
	// EagerInit has Create start an init as it begins, before it reads the
	// spec, and use it as a spare if the spec fits one (spare.go): in a
	// process that makes one container and exits (`berth runtime create`,
	// `run`), the init's start then overlaps the spec's load and checks.
	EagerInit bool
}

func (r *Runtime) root() string {
	if r.Root == "" {
		return DefaultRoot
	}
	return r.Root
}

// CreateOpts are create's options, as runc's flags.
type CreateOpts struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string // unix socket that receives the pty master (process.terminal)
	NoPivot       bool
	NoNewKeyring  bool
	// Stdio of the container process when it has no terminal; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are passed to the container as fds 3, 4, ... (runc's --preserve-fds).
	ExtraFiles []*os.File
}

// Process is a container init this process created, so it can wait for it.
// Its stdio are files (CreateOpts), so no goroutine of os/exec copies
// them, and waiting for the process is all there is to wait for.
type Process struct{ proc *os.Process }

// Pid of the init.
func (p *Process) Pid() int { return p.proc.Pid }

// Wait waits for the container's init to exit and returns its exit status
// as a shell reports it (128+signal for a signal).
func (p *Process) Wait() (int, error) {
	st, err := p.proc.Wait()
	if err != nil {
		return -1, err
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok {
		return -1, err
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// Release forgets the process without waiting for it.
func (p *Process) Release() { p.proc.Release() }

// LoadSpec reads <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFoundf("bundle %s has no config.json", bundle)
	}
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errdefs.Invalidf("config.json: %v", err)
	}
	return &s, nil
}

// Create makes container id from a bundle and leaves its init waiting for
// Start. The returned Process is the init, a child of this process.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOpts) (_ *Process, retErr error) {
	tmark("create")
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	var eager *eagerInit
	if r.EagerInit {
		eager = r.startEager()
	}
	defer eager.drop()
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	s, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	tmark("spec loaded")
	if err := Validate(s); err != nil {
		return nil, err
	}
	tmark("validated")
	// Compile the seccomp filter here, not in the init: it is cached (in
	// memory or under SeccompCache), and the init only loads it.
	var filter *seccompProgram
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if filter, err = compileSeccomp(s.Linux.Seccomp, r.SeccompCache); err != nil {
			return nil, err
		}
	}
	tmark("seccomp compiled")
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil {
		return nil, errdefs.Invalidf("root.path: %v", err)
	} else if !fi.IsDir() {
		return nil, errdefs.Invalidf("root.path: %s is not a directory", rootfs)
	}
	plan, err := planNamespaces(s)
	if err != nil {
		return nil, err
	}
	if s.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errdefs.Invalidf("process.terminal: a console socket (--console-socket) is required")
	}

	if err := os.MkdirAll(r.root(), 0o711); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, errdefs.Conflictf("container %q already exists", id)
		}
		return nil, err
	}
	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { os.RemoveAll(dir) })
	// The id is this create's now, and so is its cgroup: it is made on
	// another CPU while the state directory and the fifo are.
	cgs := startCgroupSetup(cgroupPath(s, id))
	launched := false
	defer func() {
		if launched {
			cgs.release()
		} else {
			cgs.abandon()
		}
	}()
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	tmark("fifo, socketpair")
	cgPath := cgroupPath(s, id)
	li, err := r.launchInit(s, plan, o, bundle, fifo, cgs, eager)
	if err != nil {
		return nil, err
	}
	launched = true
	defer li.close()
	cg := li.cg
	undo = append(undo, func() { cg.Destroy() })
	proc := &Process{proc: li.proc}
	undo = append(undo, func() { li.proc.Kill(); li.proc.Wait() })
	pid := li.proc.Pid
	startTime, _, _ := procStartTime(pid)
	tmark("init started")
	if !li.inCgroup {
		if err := cg.Apply(pid); err != nil {
			return nil, err
		}
	}
	state := specs.State{Version: specs.Version, ID: id, Status: "creating", Pid: pid, Bundle: bundle, Annotations: s.Annotations}
	conn := newSyncConn(li.sock)
	cfg := &initConfig{Spec: specForInit(s), Rootfs: rootfs, Bundle: bundle, NoPivot: o.NoPivot, NewCgroup: plan.newCgroup,
		NewUserNS: plan.cloneFlags&unix.CLONE_NEWUSER != 0, NewMountNS: plan.cloneFlags&unix.CLONE_NEWNS != 0,
		NewPidNS: plan.cloneFlags&unix.CLONE_NEWPID != 0, HostMountNS: plan.hostMountNS, State: state, Seccomp: filter}
	if err := conn.send(syncMsg{Type: msgConfig, Init: cfg}); err != nil {
		return nil, fmt.Errorf("sync with the init: %w", err)
	}
	// The limits are set once the init has set the rootfs up, when it asks
	// for the hooks or says it is ready: in place before hooks run and
	// before the container's process can exist, as runc sets them at its
	// init's procReady. Not sooner for a forked init: it is born in the
	// cgroup while its Go runtime still starts threads, which a small
	// pids.max would refuse (the init would die). An adopted spare gets
	// them as soon as it has the config (below).
	limited := false
	limit := func() error {
		if limited || s.Linux == nil || s.Linux.Resources == nil {
			return nil
		}
		limited = true
		if err := cg.Set(s.Linux.Resources); err != nil {
			return fmt.Errorf("linux.resources: %w", err)
		}
		tmark("cgroup limits")
		return nil
	}
	if li.inCgroup && li.launch == nil {
		// An adopted spare: only its main thread joined the cgroup (per
		// thread, on v1), and its Go runtime started its threads long ago.
		// The limits can go in now, while the init sets the rootfs up on
		// another CPU. (A forked init's threads are all born inside.)
		if err := limit(); err != nil {
			return nil, err
		}
	}
	for {
		m, err := conn.recv()
		if err != nil {
			return nil, fmt.Errorf("container init died during setup: %w", err)
		}
		if m.Type == msgError {
			return nil, initError(m)
		}
		tmark("init message")
		if err := limit(); err != nil {
			return nil, err
		}
		if m.Type == msgReady {
			break
		}
		if m.Type != msgHooks {
			return nil, fmt.Errorf("sync: unexpected %q", m.Type)
		}
		if s.Hooks != nil {
			//lint:ignore SA1019 prestart is deprecated but still part of the spec
			hooks := append(append([]specs.Hook{}, s.Hooks.Prestart...), s.Hooks.CreateRuntime...)
			if err := runHooks(ctx, "createRuntime", hooks, state); err != nil {
				return nil, err
			}
		}
		if err := conn.send(syncMsg{Type: msgHooksDone}); err != nil {
			return nil, err
		}
	}

	tmark("init ready")
	owner := ""
	rec := &record{State: state, Rootfs: rootfs, Created: time.Now().UTC(), Owner: owner, StartTime: startTime,
		CgroupPath: cgPath, Config: s, InitExe: exeID(pid)}
	rec.Status = StatusCreated
	if err := writeRecord(dir, rec); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	if r.Spare && spareFits(plan, o) {
		r.refillSpare()
	}
	log.From(ctx).Debug("container created", "id", id, "pid", pid)
	return proc, nil
}

func idMaps(l *specs.Linux, uid bool) []syscall.SysProcIDMap {
	if l == nil {
		return nil
	}
	src := l.GIDMappings
	if uid {
		src = l.UIDMappings
	}
	var out []syscall.SysProcIDMap
	for _, m := range src {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// nsPlan says which namespaces are cloned new and which are joined.
type nsPlan struct {
	cloneFlags uintptr
	newCgroup  bool // unshared by the init once it is in its cgroup
	// hostMountNS: linux.namespaces has no mount namespace at all.
	hostMountNS bool
	joins       []nsJoin
}

type nsJoin struct {
	field string
	typ   string
	path  string
}

func planNamespaces(s *specs.Spec) (nsPlan, error) {
	var p nsPlan
	hasMount := false
	if s.Linux == nil {
		return p, errdefs.Invalidf("linux: must be set (with at least a mount namespace)")
	}
	for i, ns := range s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		t := string(ns.Type)
		if t == "mount" {
			hasMount = true
		}
		if t == "time" {
			return p, errdefs.NotImplemented(fmt.Errorf("%s: time namespaces are not supported yet", field))
		}
		if ns.Path != "" {
			if t == "user" {
				return p, errdefs.NotImplemented(fmt.Errorf("%s: joining an existing user namespace needs the nsexec constructor, not written yet (see docs/design/runtime.md)", field))
			}
			p.joins = append(p.joins, nsJoin{field: field, typ: t, path: ns.Path})
			continue
		}
		if t == "cgroup" {
			p.newCgroup = true
			continue
		}
		p.cloneFlags |= nsFlags[t]
	}
	// Without a mount namespace (new or joined) the container shares the
	// host's: its mounts land under the rootfs in the host's tree, it is
	// chroot'ed rather than pivot_root'ed, and Delete unmounts what it left.
	p.hostMountNS = !hasMount
	// The mount namespace must be joined last: it changes how later paths resolve.
	sort.SliceStable(p.joins, func(i, j int) bool { return p.joins[j].typ == "mount" && p.joins[i].typ != "mount" })
	return p, nil
}

// launchedInit is a container's init, started and waiting for its config.
type launchedInit struct {
	proc     *os.Process
	sock     *os.File      // this process's end of the sync socketpair
	console  *os.File      // this process's copy of the console connection
	cg       cgroupManager // the container's cgroup
	inCgroup bool          // the init is in cg already
	launch   *initLaunch   // what a fork opened
}

func (li *launchedInit) close() {
	if li.launch != nil {
		li.launch.close()
	} else {
		li.sock.Close()
	}
	if li.console != nil {
		li.console.Close()
	}
}

// launchInit starts container's init: a spare (spare.go) where one fits,
// else a fork and exec of the init binary.
// The cgroup (cgs) is made, or being made, by the caller, who destroys it
// if the launch fails.
func (r *Runtime) launchInit(s *specs.Spec, plan nsPlan, o CreateOpts, bundle string, fifo *os.File, cgs *cgroupSetup, eager *eagerInit) (*launchedInit, error) {
	var sp *spare
	if spareFits(plan, o) {
		if sp = r.takeSpare(); sp == nil {
			sp = eager.take()
		}
	}
	if sp != nil {
		li, err := r.adoptSpare(sp, plan, o, s.Process.Terminal, fifo, cgs)
		if err == nil {
			tmark("spare adopted")
			return li, nil
		}
		if errdefs.ClassOf(err) != nil {
			return nil, err
		}
		// The spare is gone (it died): fork, as without one.
	}
	l, err := r.prepareInit(o.ConsoleSocket, s.Process.Terminal)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	extra := append([]*os.File{}, o.ExtraFiles...)
	fdOf := func(f *os.File) int {
		if f == nil {
			return -1
		}
		extra = append(extra, f)
		return 2 + len(extra)
	}
	fds := fmt.Sprintf("%d,%d,%d,%d", fdOf(l.child), fdOf(fifo), fdOf(l.console), len(o.ExtraFiles))
	// The init binary is exec'd through its number in the child: passed
	// among the child's files, Go places it there. Its number in this
	// process could be taken over by Go's own dup3s in the child before the
	// exec (the slot just above the highest passed fd), which under many
	// concurrent creates made the exec hit a pipe (EACCES). The init closes
	// it first thing.
	exeFD := fdOf(l.exe)
	fds += "," + strconv.Itoa(exeFD)
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(exeFD),
		Args:       l.args,
		Env:        launch.Env(fds),
		Dir:        bundle,
		Stdin:      o.Stdin,
		Stdout:     o.Stdout,
		Stderr:     o.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 plan.cloneFlags,
			Setsid:                     true,
			UidMappings:                idMaps(s.Linux, true),
			GidMappings:                idMaps(s.Linux, false),
			GidMappingsEnableSetgroups: true,
		},
	}
	if plan.cloneFlags&unix.CLONE_NEWUSER != 0 {
		// Become the namespace's root once the id maps are written (as
		// runc's nsexec does): the host's root is not mapped in it, and
		// an unmapped euid would lose every capability at exec.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	tmark("prepared")
	// The cgroup exists before the init: on v1 the thread that forks the
	// init joins it first (JoinThread), so the init is born inside and
	// never migrated (a process migration waits for an RCU grace period,
	// 15-40 ms here). Where a thread cannot join (v2), the init is moved in
	// after the fork, as runc does. The limits are set once the init has
	// set the rootfs up (Create).
	cg, _, err := cgs.wait()
	if err != nil {
		return nil, err
	}
	tmark("cgroup")
	li := &launchedInit{sock: l.parent, cg: cg, launch: l}
	joinCgroup := func() (func() error, error) {
		leave, err := cg.JoinThread()
		if errors.Is(err, errdefs.ErrNotImplemented) {
			return func() error { return nil }, nil
		}
		li.inCgroup = err == nil
		return leave, err
	}
	if err := startJoined(cmd, plan.joins, joinCgroup); err != nil {
		return nil, fmt.Errorf("start the container init: %w", err)
	}
	l.child.Close()
	li.proc = cmd.Process
	ok = true
	return li, nil
}

// startJoined starts cmd from an OS thread that has joined the namespaces
// in joins and run prepare (which joins the container's cgroup) first, so
// the child is born in them. That thread is never given back to the Go
// scheduler: it ends with its goroutine.
//
// The thread leaves the cgroup again (prepare's leave) before it ends: it
// may be the main thread, which Go cannot end and parks instead, and a
// parked thread left in the container's cgroup would keep it from being
// removed.
func startJoined(cmd *exec.Cmd, joins []nsJoin, prepare func() (leave func() error, err error)) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread's namespaces and cgroups are changed
		leave, err := prepare()
		if err != nil {
			errc <- fmt.Errorf("join the container's cgroup: %w", err)
			return
		}
		err = joinAndStart(cmd, joins)
		if lerr := leave(); err == nil && lerr != nil {
			// The child started; only this thread is misplaced.
			err = nil
		}
		errc <- err
	}()
	return <-errc
}

// joinAndStart joins the namespaces (on the calling, locked thread) and
// starts cmd from it.
func joinAndStart(cmd *exec.Cmd, joins []nsJoin) error {
	for _, j := range joins {
		if j.typ == "mount" {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("%s: unshare fs: %w", j.field, err)
			}
		}
		fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return errdefs.Invalidf("%s.path: %v", j.field, err)
		}
		err = unix.Setns(fd, int(nsFlags[j.typ]))
		unix.Close(fd)
		if err != nil {
			return errdefs.Invalidf("%s.path: join %s namespace %s: %v", j.field, j.typ, j.path, err)
		}
	}
	return cmd.Start()
}

// Start lifts the start barrier of a created container: its init execs the
// user's process. Start returns once it has (so `state` says running only
// of the user's process), after the poststart hooks.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.start(ctx, id, true)
}

// StartNoWait is Start without waiting for the user's process to be
// executed (unless poststart hooks need it): the monitor's start, which
// saves the exec's time on every start. A Kill that comes before the exec
// waits for it.
func (r *Runtime) StartNoWait(ctx context.Context, id string) error {
	return r.start(ctx, id, false)
}

// start is Start; waitForExec false skips waiting for the exec unless
// poststart hooks need it (Run waits for the process anyway).
func (r *Runtime) start(ctx context.Context, id string, waitForExec bool) error {
	dir := r.dir(id)
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if rec.Status != StatusCreated {
		return errdefs.Conflictf("container %q is %s, not created: cannot start it", id, rec.Status)
	}
	hasPoststart := rec.Config != nil && rec.Config.Hooks != nil && len(rec.Config.Hooks.Poststart) > 0
	waitForExec = waitForExec || hasPoststart
	fifoPath := filepath.Join(dir, fifoName)
	f, err := os.OpenFile(fifoPath, os.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return errdefs.Conflictf("container %q: its init is gone", id)
		}
		return err
	}
	_, err = f.Write([]byte{0})
	f.Close()
	if err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	if err := os.Remove(fifoPath); err != nil {
		return err
	}
	if waitForExec {
		// Poststart hooks run after the user's process is executed.
		waitExec(ctx, rec)
	}
	if hasPoststart {
		rec.Status = StatusRunning
		if err := runHooksAll(ctx, "poststart", rec.Config.Hooks.Poststart, rec.State); err != nil {
			log.From(ctx).Warn("poststart hook failed", "id", id, "err", err)
		}
	}
	return nil
}

// State returns the OCI state of container id.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return rec.public(), nil
}

// State is the state `runc state` prints: the OCI state plus runc's extras.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func (rec *record) public() *State {
	st := &State{State: rec.State, Rootfs: rec.Rootfs, Created: rec.Created, Owner: rec.Owner}
	if st.Status == StatusStopped {
		st.Pid = 0
	}
	return st
}

// List returns the state of every container under the root, by id.
func (r *Runtime) List(ctx context.Context) ([]*State, error) {
	ents, err := os.ReadDir(r.root())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rec, err := r.load(e.Name())
		if err != nil {
			continue // being created or deleted
		}
		out = append(out, rec.public())
	}
	return out, nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if rec.Status == StatusStopped && !all {
		return errdefs.Conflictf("container %q is not running", id)
	}
	if rec.Status == StatusRunning && sig != unix.SIGKILL {
		// Started, but the init may not have executed the user's process
		// yet (StartNoWait): the signal is for the process, which would
		// never see it.
		waitExec(ctx, rec)
	}
	if all {
		cg, err := newCgroupManager(rec.CgroupPath)
		if err != nil {
			return err
		}
		pids, err := cg.Pids()
		if err != nil {
			return err
		}
		for _, p := range pids {
			unix.Kill(p, sig)
		}
		if rec.Status == StatusStopped {
			return nil
		}
	}
	return signalInit(rec, sig)
}

// signalInit signals the init through a pidfd checked against the
// recorded start time, so a recycled pid is never signalled.
func signalInit(rec *record, sig syscall.Signal) error {
	pfd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.Conflictf("container %q is not running", rec.ID)
		}
		return err
	}
	defer unix.Close(pfd)
	if !alive(rec.Pid, rec.StartTime) {
		return errdefs.Conflictf("container %q is not running", rec.ID)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal container %q: %w", rec.ID, err)
	}
	return nil
}

// Delete removes a stopped container; force kills a created or running
// one first.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	rec, err := r.load(id)
	if err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) && ValidateID(id) == nil {
			// As runc: --force on a container that does not exist (or whose
			// create died before state.json) succeeds, removing any leftover
			// directory; containerd-shim's cleanup relies on it.
			return os.RemoveAll(r.dir(id))
		}
		return err
	}
	dir := r.dir(id)
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	cg, cgErr := newCgroupManager(rec.CgroupPath)
	switch rec.Status {
	case StatusRunning, StatusPaused:
		if !force {
			return errdefs.Conflictf("container %q is %s: stop it first or use --force", id, rec.Status)
		}
		fallthrough
	case StatusCreated:
		if !force && rec.Status == StatusCreated {
			// The spec: deleting a container that is not stopped is an
			// error with no effect (runc kills a created one instead).
			return errdefs.Conflictf("container %q is created, not stopped: start it, or delete it with --force", id)
		}
		if cgErr == nil {
			if pids, err := cg.Pids(); err == nil {
				for _, p := range pids {
					unix.Kill(p, unix.SIGKILL)
				}
			}
			if rec.Status == StatusPaused {
				cg.Thaw()
			}
		}
		signalInit(rec, unix.SIGKILL)
		if err := waitGone(ctx, rec); err != nil {
			return err
		}
	}
	if cgErr == nil {
		var err error
		for i := 0; i < 50; i++ {
			if err = cg.Destroy(); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			log.From(ctx).Warn("cgroup not removed", "id", id, "err", err)
		}
	}
	if rec.Config != nil && sharesHostMountNS(rec.Config) {
		unmountUnder(ctx, rec.Rootfs)
	}
	if rec.Config != nil && rec.Config.Hooks != nil && len(rec.Config.Hooks.Poststop) > 0 {
		st := rec.State
		st.Status = StatusStopped
		if err := runHooksAll(ctx, "poststop", rec.Config.Hooks.Poststop, st); err != nil {
			log.From(ctx).Warn("poststop hook failed", "id", id, "err", err)
		}
	}
	return os.RemoveAll(dir)
}

// waitExec waits (up to 2 s) until the init, released from the start
// barrier, has exec'd the user's process: its /proc/<pid>/exe is no longer
// the init's program (rec.InitExe), or it is gone. A record without
// InitExe (written by an older berth) does not wait.
func waitExec(ctx context.Context, rec *record) {
	if rec.InitExe == nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		id := exeID(rec.Pid)
		if id == nil || *id != *rec.InitExe || !alive(rec.Pid, rec.StartTime) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func waitGone(ctx context.Context, rec *record) error {
	deadline := time.Now().Add(10 * time.Second)
	for alive(rec.Pid, rec.StartTime) {
		if time.Now().After(deadline) {
			return errdefs.Unavailable(fmt.Errorf("container %q: init %d did not die after SIGKILL", rec.ID, rec.Pid))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// Ps returns the host pids of the container's processes.
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := newCgroupManager(rec.CgroupPath)
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.freeze(id, true)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.freeze(id, false)
}

func (r *Runtime) freeze(id string, freeze bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	cg, err := newCgroupManager(rec.CgroupPath)
	if err != nil {
		return err
	}
	if freeze {
		if rec.Status != StatusRunning {
			return errdefs.Conflictf("container %q is %s, not running", id, rec.Status)
		}
		return cg.Freeze()
	}
	if rec.Status != StatusPaused {
		return errdefs.Conflictf("container %q is %s, not paused", id, rec.Status)
	}
	return cg.Thaw()
}

func (r *Runtime) frozen(rec *record) bool {
	for _, dir := range []string{"/sys/fs/cgroup/freezer", "/sys/fs/cgroup"} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.Clean("/"+rec.CgroupPath), "freezer.state"))
		if err == nil {
			return strings.TrimSpace(string(b)) == "FROZEN"
		}
		b, err = os.ReadFile(filepath.Join(dir, filepath.Clean("/"+rec.CgroupPath), "cgroup.freeze"))
		if err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	return false
}

// Run creates and starts a container, waits for it and deletes it. It
// returns the container's exit status. With forward, the signals this
// process receives are forwarded to the container's init, as runc's run
// does, from before the container's process starts until it is gone.
//
// Asking the Go runtime for every signal costs one handoff to its signal
// thread per signal: ≈ 2.5 ms on the project machine, a twelfth of a run.
// So the request runs beside the create, and the start waits for it: a
// signal arriving before then meets its default action, as one arriving
// while the binary initialised would, and the container's process has not
// started.
func (r *Runtime) Run(ctx context.Context, id string, o CreateOpts, forward bool) (int, error) {
	var sigs chan os.Signal
	var armed chan struct{}
	if forward {
		sigs, armed = make(chan os.Signal, 16), make(chan struct{})
		go func() {
			signal.Notify(sigs)
			close(armed)
		}()
		defer func() {
			<-armed
			signal.Stop(sigs)
		}()
	}
	p, err := r.Create(ctx, id, o)
	if err != nil {
		return -1, err
	}
	if armed != nil {
		<-armed
	}
	if err := r.start(ctx, id, false); err != nil {
		r.Delete(context.WithoutCancel(ctx), id, true)
		p.Wait()
		return -1, err
	}
	done := make(chan struct{})
	if sigs != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case s := <-sigs:
					if ss, ok := s.(syscall.Signal); ok && ss != unix.SIGCHLD && ss != unix.SIGURG {
						p.proc.Signal(ss)
					}
				}
			}
		}()
	}
	tmark("started")
	code, err := p.Wait()
	tmark("exited")
	close(done)
	if derr := r.Delete(context.WithoutCancel(ctx), id, true); err == nil {
		err = derr
	}
	tmark("deleted")
	return code, err
}

var traceStart = time.Now()

// tmark prints the time since process start at a phase when
// BERTH_RUNTIME_TIMING is set (for benchmarking the runtime).
func tmark(phase string) {
	if os.Getenv(launch.TimingEnv) != "" {
		fmt.Fprintf(os.Stderr, "%8.2fms %s\n", float64(time.Since(traceStart).Microseconds())/1000, phase)
	}
}

// specForInit is s as the init gets it: without linux.seccomp, which the
// init never reads (it loads the program the parent compiled) and which is
// most of the bytes of a spec with Docker's profile, and without
// linux.resources, which only the parent applies (cgroups). Both would be
// encoded here and decoded there, in a process whose first decode of each
// type is its slowest, on every start.
func specForInit(s *specs.Spec) *specs.Spec {
	if s.Linux == nil || (s.Linux.Seccomp == nil && s.Linux.Resources == nil) {
		return s
	}
	out, linux := *s, *s.Linux
	linux.Seccomp, linux.Resources = nil, nil
	out.Linux = &linux
	return &out
}

// initLaunch is what starting a `berth init` needs, for a create and an
// exec alike: the sync socketpair, the console socket's connection (for a
// terminal), the init binary to exec and its arguments.
type initLaunch struct {
	parent, child *os.File // the sync socketpair: this process's end, the init's
	console       *os.File // connection to the console socket; nil without a terminal
	exe           *os.File // the init binary (launch.OpenBinary)
	args          []string
}

// prepareInit opens what an init needs; close releases it all.
func (r *Runtime) prepareInit(consoleSocket string, terminal bool) (_ *initLaunch, err error) {
	l := &initLaunch{args: r.InitArgs}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	l.parent, l.child = os.NewFile(uintptr(pair[0]), "sync"), os.NewFile(uintptr(pair[1]), "sync-child")
	if terminal {
		if l.console, err = dialConsole(consoleSocket); err != nil {
			return nil, err
		}
	}
	initPath, err := r.initPath()
	if err != nil {
		return nil, err
	}
	if l.exe, err = launch.OpenBinary(initPath); err != nil {
		return nil, fmt.Errorf("init binary: %w", err)
	}
	if len(l.args) == 0 {
		l.args = launch.DefaultArgs
	}
	return l, nil
}

// dialConsole connects to the console socket, where the init sends the
// pty master, and returns the connection as a file to pass to the init.
func dialConsole(socket string) (*os.File, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	return conn.(*net.UnixConn).File()
}

// initPath is the binary to exec as the init: InitPath if set; else the
// static init this berth embeds (initbin), installed once under the state
// root; else this binary itself, as `berth init`.
func (r *Runtime) initPath() (string, error) {
	if r.InitPath != "" {
		return r.InitPath, nil
	}
	if len(r.InitArgs) == 0 {
		path, err := initbin.Install(filepath.Join(r.root(), "@init"))
		if err != nil || path != "" {
			return path, err
		}
	}
	return "/proc/self/exe", nil
}

// nsenterPath is berth-nsenter, installed under the state root; "" when
// this berth does not carry it.
func (r *Runtime) nsenterPath() (string, error) {
	return initbin.InstallNsenter(filepath.Join(r.root(), "@init"))
}

func (l *initLaunch) close() {
	for _, f := range []*os.File{l.parent, l.child, l.console, l.exe} {
		if f != nil {
			f.Close()
		}
	}
}
