package ociruntime

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/ociruntime/launch"
)

// A spare is a container init started ahead of need (Runtime.Spare), so
// that a create finds one already past what every init costs before it can
// read its config: the fork and exec, the Go runtime's start, and the first
// decode of each JSON type (the spare decodes a sample while it waits).
// That is about half of a create here, and it moves off the path from
// `docker run` to the container's process.
//
// A spare is born like any init, from the same detached read-only init
// binary, with the namespaces of a Docker container but the mount
// namespace (spareFlags), in this process's cgroups, shortly after a
// create (spareDelay). A create that fits takes it:
//
//	 parent (create)                               spare (berth init)
//	 ───────────────                               ──────────────────
//	 (ahead) clone(spareFlags)+exec ────────────▶ starts, decodes a sample
//	                                                config, blocks in recvmsg
//	 mkdir the container's cgroup
//	 ── header, SCM_RIGHTS stdin, stdout, ──────▶ dup3s the stdio onto 0-2, keeps
//	    stderr, exec.fifo, console, netns,          the fifo and console, setns(net),
//	    each hierarchy's cgroup "tasks" (v1)        writes "0" to each tasks file,
//	                                                unshare(mount): a copy of the
//	                                                host's mounts as they are now
//	 ...then the protocol of sync.go, from "config" on.
//
// The thread that writes "0" moves itself alone, which takes no RCU grace
// period (see cgroup.Manager.JoinThread): on v1 it is the thread that sets
// the container up and execs its process, and the spare's other threads,
// left in this process's cgroups, end at that exec. On v2, where a thread
// cannot move alone, the parent moves the spare in, as it moves a forked
// init. Unused, a spare is let go after SpareTTL: its socket is closed and
// it exits on EOF, as it does when this process ends.
// What never takes a spare, and forks its init as before: a user
// namespace, other joined namespaces than the network's, no mount
// namespace, preserved fds.

// spareFlags are the namespaces a spare is born in. Its mount namespace
// is made at adoption (below), and a container that joins a network
// namespace (the daemon's bridge) has the spare setns into it.
const spareFlags = launch.SpareFlags

// SpareTTL is how long a spare waits for a create before it is let go.
var SpareTTL = 10 * time.Second

// spareDelay is how long after a create its replacement spare is started.
const spareDelay = 15 * time.Millisecond

// The adoption header: 'A', one '0'/'1' per fd that may follow, in this
// order, then two digits, the number of cgroup tasks files after them, and
// '\n'.
const (
	adoptStdin = 1 + iota
	adoptStdout
	adoptStderr
	adoptFifo
	adoptConsole
	adoptNetNS
	adoptTasks // two digits
	adoptLen   = adoptTasks + 3
)

type spare struct {
	*launch.Spare
	timer *time.Timer
}

// spareSlot holds at most one idle spare; the zero value is empty.
type spareSlot struct {
	mu       sync.Mutex // guards the fields
	idle     *spare
	spawning bool
	closed   bool           // CloseSpare was called: no more spares
	spawns   sync.WaitGroup // the start in flight, which CloseSpare waits for
}

// spareFits says whether a container can be started by a spare.
func spareFits(plan nsPlan, o CreateOpts) bool {
	if plan.hostMountNS || len(o.ExtraFiles) > 0 {
		return false
	}
	switch {
	case plan.cloneFlags == spareFlags|unix.CLONE_NEWNS:
		return len(plan.joins) == 0
	case plan.cloneFlags == (spareFlags|unix.CLONE_NEWNS)&^unix.CLONE_NEWNET:
		return len(plan.joins) == 1 && plan.joins[0].typ == string(specs.NetworkNamespace)
	}
	return false
}

// takeSpare hands over the idle spare, or nil.
func (r *Runtime) takeSpare() *spare {
	r.spares.mu.Lock()
	defer r.spares.mu.Unlock()
	sp := r.spares.idle
	if sp == nil {
		return nil
	}
	r.spares.idle = nil
	sp.timer.Stop()
	return sp
}

// refillSpare starts a spare in the background, unless one is idle or
// being started. Create calls it after each container that fits a spare:
// the next one will likely fit too.
func (r *Runtime) refillSpare() {
	r.spares.mu.Lock()
	if r.spares.idle != nil || r.spares.spawning || r.spares.closed {
		r.spares.mu.Unlock()
		return
	}
	r.spares.spawning = true
	r.spares.spawns.Add(1)
	r.spares.mu.Unlock()
	go func() {
		defer r.spares.spawns.Done()
		// Not at once: the container just created is about to start, and
		// the spare's start would compete with it for the CPU.
		time.Sleep(spareDelay)
		sp, err := r.startSpare(true)
		r.spares.mu.Lock()
		r.spares.spawning = false
		closed := r.spares.closed
		if err == nil && !closed {
			r.spares.idle = sp
			sp.timer = time.AfterFunc(SpareTTL, func() { r.expireSpare(sp) })
		}
		r.spares.mu.Unlock()
		if err == nil && closed {
			sp.Discard()
		}
	}()
}

// eagerInit is an init Create started before it knew whether it could use
// one (Runtime.EagerInit).
type eagerInit struct {
	ch    chan *spare // receives it once started (nil if that failed)
	taken bool
}

func (r *Runtime) startEager() *eagerInit {
	e := &eagerInit{ch: make(chan *spare, 1)}
	if r.InitPath == "" && len(r.InitArgs) == 0 {
		if sp := launch.TakeEarly(r.root()); sp != nil {
			tmark("early spare taken")
			e.ch <- &spare{Spare: sp}
			return e
		}
	}
	go func() {
		sp, err := r.startSpare(false)
		if err != nil {
			sp = nil
		}
		e.ch <- sp
	}()
	return e
}

// take waits for the init and hands it over (nil if it did not start).
func (e *eagerInit) take() *spare {
	if e == nil || e.taken {
		return nil
	}
	e.taken = true
	return <-e.ch
}

// drop lets the init go if the create did not take it. It does not wait:
// the init ends by itself once its socket closes.
func (e *eagerInit) drop() {
	if e == nil || e.taken {
		return
	}
	e.taken = true
	go func() {
		if sp := <-e.ch; sp != nil {
			sp.Discard()
		}
	}()
}

// expireSpare lets sp go if it is still the idle spare.
func (r *Runtime) expireSpare(sp *spare) {
	r.spares.mu.Lock()
	if r.spares.idle != sp {
		r.spares.mu.Unlock()
		return
	}
	r.spares.idle = nil
	r.spares.mu.Unlock()
	sp.Discard()
}

// CloseSpare lets the idle spare go now, and one being started once it
// is; no spare is started after it (the monitor calls it as it stops).
func (r *Runtime) CloseSpare() {
	r.spares.mu.Lock()
	r.spares.closed = true
	sp := r.spares.idle
	r.spares.idle = nil
	r.spares.mu.Unlock()
	r.spares.spawns.Wait()
	if sp != nil {
		sp.timer.Stop()
		sp.Discard()
	}
}

// startSpare starts a spare init (launch.StartSpare).
func (r *Runtime) startSpare(warm bool) (*spare, error) {
	path, err := r.initPath()
	if err != nil {
		return nil, err
	}
	sp, err := launch.StartSpare(path, r.InitArgs, warm)
	if err != nil {
		return nil, err
	}
	return &spare{Spare: sp}, nil
}

// adoptSpare makes sp the container's init: it is sent its stdio,
// exec.fifo, console connection, network namespace and cgroup. On an error
// sp is gone and nothing of it remains.
func (r *Runtime) adoptSpare(sp *spare, plan nsPlan, o CreateOpts, terminal bool, fifo *os.File, cgs *cgroupSetup) (_ *launchedInit, err error) {
	li := &launchedInit{proc: sp.Process, sock: sp.Sock}
	defer func() {
		if err != nil {
			sp.Discard()
			if li.console != nil {
				li.console.Close()
			}
		}
	}()
	cg, tasks, err := cgs.wait()
	if err != nil {
		return nil, err
	}
	li.cg = cg
	li.inCgroup = tasks != nil
	header := []byte("A000000" + fmt.Sprintf("%02d", len(tasks)) + "\n")
	var files []*os.File
	add := func(i int, f *os.File) {
		if f != nil {
			header[i] = '1'
			files = append(files, f)
		}
	}
	add(adoptStdin, o.Stdin)
	add(adoptStdout, o.Stdout)
	add(adoptStderr, o.Stderr)
	add(adoptFifo, fifo)
	if terminal {
		if li.console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		add(adoptConsole, li.console)
	}
	if len(plan.joins) == 1 {
		ns, err := os.Open(plan.joins[0].path)
		if err != nil {
			return nil, errdefs.Invalidf("%s.path: %v", plan.joins[0].field, err)
		}
		defer ns.Close()
		add(adoptNetNS, ns)
	}
	files = append(files, tasks...)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if err := unix.Sendmsg(int(sp.Sock.Fd()), header, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL); err != nil {
		return nil, fmt.Errorf("hand the container to a spare init: %w", err)
	}
	return li, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// awaitAdoption is a spare init's wait for its container (the init side of
// adoptSpare). It returns fds with the fifo and console it was given;
// when the runtime lets it go (EOF) it exits.
func awaitAdoption(fds initFDs, warm bool) (initFDs, error) {
	if unix.Gettid() != unix.Getpid() {
		// Its namespaces and cgroups change per thread, and /proc/self is
		// the main thread's: the program must lock it (cmd/berth-init does).
		return fds, fmt.Errorf("spare: the init does not run on its main thread")
	}
	if warm {
		warmJSON()
	}
	header := make([]byte, adoptLen)
	oob := make([]byte, unix.CmsgSpace(64*4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(fds.sync, header, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fds, fmt.Errorf("spare: wait for a container: %w", err)
	}
	if n == 0 {
		os.Exit(0) // let go
	}
	var got []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if more, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				got = append(got, more...)
			}
		}
	}
	tasks, terr := strconv.Atoi(string(header[adoptTasks : adoptTasks+2]))
	if n != len(header) || header[0] != 'A' || header[adoptLen-1] != '\n' || terr != nil {
		return fds, fmt.Errorf("spare: bad adoption header %q", header[:n])
	}
	want := tasks
	for _, c := range header[1:adoptTasks] {
		if c == '1' {
			want++
		}
	}
	if len(got) != want {
		return fds, fmt.Errorf("spare: %d file descriptors for a header %q", len(got), header)
	}
	next := func(i int) int {
		if header[i] != '1' {
			return -1
		}
		fd := got[0]
		got = got[1:]
		return fd
	}
	for target := 0; target <= 2; target++ {
		if fd := next(adoptStdin + target); fd >= 0 {
			if err := unix.Dup3(fd, target, 0); err != nil {
				return fds, fmt.Errorf("spare: stdio: %w", err)
			}
			unix.Close(fd)
		}
	}
	fds.fifo = next(adoptFifo)
	fds.console = next(adoptConsole)
	ns := next(adoptNetNS)
	// This thread is the one that sets the container up and execs its
	// process (InitMain locked it): it alone joins the container's cgroups
	// and namespaces, and the process it becomes has them.
	for _, fd := range got {
		_, err := unix.Write(fd, []byte("0"))
		unix.Close(fd)
		if err != nil {
			return fds, fmt.Errorf("spare: join the container's cgroup: %w", err)
		}
	}
	if ns >= 0 {
		err := unix.Setns(ns, unix.CLONE_NEWNET)
		unix.Close(ns)
		if err != nil {
			return fds, errdefs.Invalidf("linux.namespaces: join the network namespace: %v", err)
		}
	}
	// The mount namespace is copied now, not at the spare's birth: it must
	// hold the container's rootfs and every mount made since. The thread
	// unshares its fs attributes first, which it shares with the Go
	// runtime's other threads (as joinAndStart does).
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fds, fmt.Errorf("spare: unshare fs: %w", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fds, fmt.Errorf("spare: new mount namespace: %w", err)
	}
	return fds, nil
}

// warmJSON decodes a sample config, so that the real one, which decides
// how soon the container starts, finds the decoders of its types built.
func warmJSON() {
	b, err := json.Marshal(syncMsg{Type: msgConfig, Init: &initConfig{Spec: sampleSpec(), Seccomp: &seccompProgram{}}})
	if err == nil {
		var m syncMsg
		json.Unmarshal(b, &m)
	}
	// Collect the sample's garbage: the real decode then reuses its pages
	// instead of faulting in fresh ones.
	runtime.GC()
}

// sampleSpec has one of each part of a spec that Docker's containers use.
func sampleSpec() *specs.Spec {
	s := DefaultSpec(false)
	s.Hostname = "sample"
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1, Soft: 1}}
	s.Process.User.AdditionalGids = []uint32{1}
	s.Process.ApparmorProfile = "unconfined"
	oom := 0
	s.Process.OOMScoreAdj = &oom
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}}
	s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Args: []string{"true"}}}}
	s.Annotations = map[string]string{"a": "b"}
	return s
}
