package runtime_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	b := h.bundle(nil, "sh", "-c", "echo started; exec sleep 1000")
	c := id(t)
	out := h.create(b, c)
	s := h.state(c)
	if s.Status != specs.StateCreated || s.Pid <= 0 || s.ID != c {
		t.Fatalf("after create: %+v", s)
	}
	if abs, _ := filepath.Abs(b); s.Bundle != abs {
		t.Errorf("state bundle %q, want %q", s.Bundle, abs)
	}
	if r := h.run("create", "--bundle", b, c); r.code == 0 {
		t.Error("second create with the same id succeeded")
	}
	// The process has not started: nothing printed.
	if b, _ := os.ReadFile(out.Name()); len(b) != 0 {
		t.Errorf("output before start: %q", b)
	}
	h.must("start", c)
	h.waitStatus(c, specs.StateRunning)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(out.Name())
		if string(b) == "started\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("output after start: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := h.run("start", c); r.code == 0 {
		t.Error("start of a running container succeeded")
	}
	if r := h.run("delete", c); r.code == 0 {
		t.Error("delete of a running container without --force succeeded")
	}
	// list shows it.
	r := h.must("list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != c {
		t.Errorf("list: %v %s", err, r.stdout)
	}
	h.must("kill", c, "KILL")
	h.waitStatus(c, specs.StateStopped)
	h.must("delete", c)
	if r := h.run("state", c); r.code == 0 {
		t.Error("state of a deleted container succeeded")
	}
}

func TestKillSignalNumberAndDeleteForce(t *testing.T) {
	h := newHarness(t)
	b := h.bundle(nil, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
	c := id(t)
	h.create(b, c)
	h.must("start", c)
	h.waitStatus(c, specs.StateRunning)
	// The shell is pid 1 of its namespace: a SIGTERM that arrives before
	// its trap is set is dropped (pid 1 has no default action), so the
	// signal is sent again until the trap has taken it.
	deadline := time.Now().Add(10 * time.Second)
	for h.state(c).Status != specs.StateStopped {
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not stop on signal 15 within 10s", c)
		}
		h.run("kill", c, "15") // fails once it has stopped
		time.Sleep(100 * time.Millisecond)
	}
	h.must("delete", c)

	c = id(t)
	h.create(h.bundle(nil, "sleep", "1000"), c)
	h.must("start", c)
	h.must("delete", "--force", c)
	if r := h.run("state", c); r.code == 0 {
		t.Error("state after delete --force succeeded")
	}
}

// TestDeleteCreated: a created (never started) container can be deleted,
// and its init is gone afterwards.
func TestDeleteCreated(t *testing.T) {
	h := newHarness(t)
	c := id(t)
	h.create(h.bundle(nil, "true"), c)
	pid := h.state(c).Pid
	h.must("delete", "--force", c)
	waitGone(t, pid)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoRuntimeProcessRemains: after start, no process of the runtime's
// binary is left per container: none is the container's parent, none is in
// its namespaces.
func TestNoRuntimeProcessRemains(t *testing.T) {
	h := newHarness(t)
	c := id(t)
	h.create(h.bundle(nil, "sleep", "1000"), c)
	h.must("start", c)
	pid := h.waitStatus(c, specs.StateRunning).Pid
	var bin unix.Stat_t
	if err := unix.Stat(h.rt.binary, &bin); err != nil {
		t.Fatal(err)
	}
	isRuntime := func(p string) bool {
		var st unix.Stat_t
		return unix.Stat("/proc/"+p+"/exe", &st) == nil && st.Dev == bin.Dev && st.Ino == bin.Ino
	}
	// "running" is reported once start released the init, which then
	// execs the process: wait for that exec (runc's start does not wait
	// for it either).
	for deadline := time.Now().Add(5 * time.Second); isRuntime(strconv.Itoa(pid)) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if ppid := field(t, string(status), "PPid"); isRuntime(ppid) {
		t.Errorf("the container's parent %s is a runtime process", ppid)
	}
	ns := func(p, n string) string { l, _ := os.Readlink("/proc/" + p + "/ns/" + n); return l }
	cpid, cmnt := ns(strconv.Itoa(pid), "pid"), ns(strconv.Itoa(pid), "mnt")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil || !isRuntime(e.Name()) {
			continue
		}
		if ns(e.Name(), "pid") == cpid || ns(e.Name(), "mnt") == cmnt {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			t.Errorf("runtime process %s remains in the container: %q", e.Name(), cmdline)
		}
	}
	h.must("delete", "--force", c)
}

func TestConsoleSocket(t *testing.T) {
	h := newHarness(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, 4096)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
				got <- os.NewFile(uintptr(fds[0]), "pty-master")
				return
			}
		}
		got <- nil
	}()
	b := h.bundle(func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	}, "sh", "-c", "tty; stty size; echo done")
	c := id(t)
	h.create(b, c, "--console-socket", sock)
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master received")
	}
	if master == nil {
		t.Fatal("console socket: no fd received")
	}
	defer master.Close()
	h.must("start", c)
	var out []byte
	buf := make([]byte, 1024)
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(out), "done") {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	s := string(out)
	if !strings.Contains(s, "/dev/pts/0") || !strings.Contains(s, "30 100") {
		t.Errorf("console output %q: want /dev/pts/0 and size 30 100", s)
	}
	h.waitStatus(c, specs.StateStopped)
	h.must("delete", c)
	_ = syscall.SIGKILL
}

// TestEmbeddedInit: a berth built by `make build` execs its embedded static
// init, installed once under the state root (read-only), and
// `list` does not take the install for a container.
func TestEmbeddedInit(t *testing.T) {
	h := newHarness(t)
	if h.rt.isRunc || os.Getenv("BERTH_TEST_RUNTIME") != "" {
		t.Skip("berth's own init")
	}
	h.mustIn(nil, "true")
	installed, _ := filepath.Glob(filepath.Join(h.root, "@init", "berth-init-*"))
	if len(installed) == 0 {
		t.Skip("this berth carries no embedded init (built without make's embedinit tag)")
	}
	if len(installed) != 1 {
		t.Fatalf("installed inits: %v", installed)
	}
	st, err := os.Stat(installed[0])
	if err != nil || st.Mode().Perm() != 0o555 {
		t.Fatalf("installed init %s: %v %v", installed[0], st.Mode(), err)
	}
	c := id(t)
	h.create(h.bundle(nil, "sleep", "1000"), c)
	// The exe is a detached read-only bind mount of the install: the same
	// inode under no path.
	exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", h.state(c).Pid))
	if err != nil || !os.SameFile(exe, st) {
		t.Errorf("the init does not run the installed berth-init (%v)", err)
	}
	if out := h.must("list", "-q").stdout; strings.Contains(out, "@init") {
		t.Errorf("list shows the init's install: %q", out)
	}
	h.must("delete", "--force", c)
}

// TestEarlySpare: `berth runtime run` and `create` start their container's
// init as the process starts (internal/ociruntime/spawn) and use it; one
// they cannot use (a user namespace takes a forked init) is not left
// behind. The first run in a state root installs the init there; only the
// runs after it can start theirs early.
func TestEarlySpare(t *testing.T) {
	h := newHarness(t)
	if h.rt.isRunc || os.Getenv("BERTH_TEST_RUNTIME") != "" {
		t.Skip("berth's own start")
	}
	run := func(bundle string) string {
		c := h.cmd("run", "--bundle", bundle, id(t))
		c.Env = append(os.Environ(), "BERTH_RUNTIME_TIMING=1")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		return string(out)
	}
	run(h.bundle(nil, "true")) // installs the init
	if out := run(h.bundle(nil, "true")); !strings.Contains(out, "early spare taken") {
		t.Errorf("the run did not take its early spare:\n%s", out)
	}
	before := initProcesses(t)
	out := run(userNSBundle(h, "true"))
	if !strings.Contains(out, "early spare taken") {
		t.Errorf("the run did not take its early spare:\n%s", out)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := 0
		for p := range initProcesses(t) {
			if !before[p] {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d init processes left after a run that could not use its early spare", left)
		}
	}
}

// initProcesses are the pids of processes running berth-init.
func initProcesses(t *testing.T) map[string]bool {
	ps := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && strings.Contains(filepath.Base(exe), "berth-init") {
			ps[e.Name()] = true
		}
	}
	return ps
}

// TestRunForwardsSignals: `run` (not detached) forwards the signals it
// gets to the container's init, as runc's does, and exits with the
// container's status.
func TestRunForwardsSignals(t *testing.T) {
	h := newHarness(t)
	b := h.bundle(nil, "sh", "-c", "trap 'exit 43' USR1; echo ready; while :; do sleep 0.1; done")
	c := h.cmd("run", "--bundle", b, id(t))
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("container said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		t.Fatal("the container did not start within 10s")
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	// The shell is pid 1 of its namespace: a signal that arrives before its
	// trap is set is dropped, so it is sent until the container has ended.
	deadline := time.After(10 * time.Second)
	for {
		c.Process.Signal(syscall.SIGUSR1)
		select {
		case err := <-waited:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 43 {
				t.Fatalf("run ended with %v, want exit status 43 (the trap's)", err)
			}
			return
		case <-deadline:
			c.Process.Kill()
			t.Fatal("run did not end within 10s of SIGUSR1")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
