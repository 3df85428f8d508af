package monitor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/logs"
	"github.com/berth/berth/internal/testutil"
)

// procRuntime runs a bundle's command as a plain child process, without
// namespaces: the monitor's own machinery (stdio, pty hand-off, logs,
// attach, reaping, exit records) is what these tests exercise, with real
// processes, pipes and ptys. The bundle is a directory holding "cmd", the
// argv one per line. Like an OCI runtime, Create leaves the process waiting
// before exec until Start.
type procRuntime struct {
	mu    sync.Mutex
	procs map[string]*procEntry
	fail  error // returned by the next Create, when set
}

type procEntry struct {
	pid  int
	gate *os.File // write end; closing it lets the process exec
}

func (p *procRuntime) Create(ctx context.Context, id, bundle string, stdio Stdio) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		err := p.fail
		p.fail = nil
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(bundle, "cmd"))
	if err != nil {
		return 0, err
	}
	argv := strings.Split(strings.TrimSpace(string(b)), "\n")
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer gateR.Close()
	// The shell waits on fd 3 until Start closes the gate, then execs.
	cmd := exec.Command(testutil.BusyboxBinary, append([]string{"sh", "-c", `read -r _ <&3; exec 3<&-; exec "$@"`, "sh"}, argv...)...)
	cmd.ExtraFiles = []*os.File{gateR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var slave *os.File
	if stdio.ConsoleSocket != "" {
		master, s, err := openPTY()
		if err != nil {
			return 0, err
		}
		defer master.Close()
		slave = s
		defer slave.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty = true
		if err := sendFD(stdio.ConsoleSocket, master); err != nil {
			return 0, err
		}
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if p.procs == nil {
		p.procs = map[string]*procEntry{}
	}
	p.procs[id] = &procEntry{pid: cmd.Process.Pid, gate: gateW}
	return cmd.Process.Pid, nil // never Wait: the monitor's reaper collects it
}

func (p *procRuntime) Start(ctx context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.procs[id]
	if !ok {
		return errdefs.NotFoundf("no such container %s", id)
	}
	e.gate.Write([]byte("go\n"))
	return e.gate.Close()
}

func (p *procRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.procs[id]
	if !ok {
		return errdefs.NotFoundf("no such container %s", id)
	}
	return unix.Kill(e.pid, sig)
}

func (p *procRuntime) Delete(ctx context.Context, id string, force bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.procs[id]; ok {
		if force {
			unix.Kill(e.pid, unix.SIGKILL)
		}
		e.gate.Close()
		delete(p.procs, id)
	}
	return nil
}

func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

func sendFD(socket string, f *os.File) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, _, err = conn.(*net.UnixConn).WriteMsgUnix([]byte("pty"), unix.UnixRights(int(f.Fd())), nil)
	return err
}

type fixture struct {
	t   *testing.T
	rt  *procRuntime
	c   *Client
	dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testutil.RequireFile(t, testutil.BusyboxBinary, "busybox-static")
	dir := t.TempDir()
	rt := &procRuntime{}
	sock := filepath.Join(dir, "monitor.sock")
	m, err := New(Config{Socket: sock, Runtime: rt, SweepInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx) }()
	c := NewClient(sock)
	t.Cleanup(func() {
		for _, s := range mustList(t, c) {
			c.Delete(context.Background(), s.ID, true)
		}
		c.Close()
		cancel()
		<-served
	})
	for i := 0; ; i++ {
		if c.Ping(context.Background()) == nil {
			break
		}
		if i > 200 {
			t.Fatal("monitor did not come up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &fixture{t: t, rt: rt, c: c, dir: dir}
}

func mustList(t *testing.T, c *Client) []TaskState {
	l, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// create makes a task running argv; it returns the task's directory.
func (f *fixture) create(id string, req CreateRequest, argv ...string) string {
	f.t.Helper()
	bundle := filepath.Join(f.dir, "bundles", id)
	cdir := filepath.Join(f.dir, "containers", id)
	os.MkdirAll(bundle, 0o755)
	os.MkdirAll(cdir, 0o755)
	os.WriteFile(filepath.Join(bundle, "cmd"), []byte(strings.Join(argv, "\n")), 0o644)
	req.ID, req.Bundle, req.Dir = id, bundle, cdir
	if _, err := f.c.Create(context.Background(), req); err != nil {
		f.t.Fatal(err)
	}
	return cdir
}

func (f *fixture) waitExit(events <-chan TaskState, id string) TaskState {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s, ok := <-events:
			if !ok {
				f.t.Fatal("events stream ended")
			}
			if s.ID == id && s.Status == Exited {
				return s
			}
		case <-timeout:
			f.t.Fatalf("no exit of %s within 10s", id)
		}
	}
}

func TestRunAttachLogsAndExit(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := f.c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cdir := f.create("web", CreateRequest{}, testutil.BusyboxBinary, "sh", "-c", "echo out; echo err >&2; exit 7")
	conn, br, err := f.c.Attach(ctx, "web", false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := f.c.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, br); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Fatalf("attached output: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	s := f.waitExit(events, "web")
	if s.ExitCode != 7 {
		t.Fatalf("exit code %d, want 7", s.ExitCode)
	}
	rec, err := ReadExitRecord(cdir)
	if err != nil || rec.ExitCode != 7 || rec.ExitedAt.IsZero() {
		t.Fatalf("exit record = %+v, %v", rec, err)
	}
	var lines []string
	logs.Read(ctx, cdir, "web", logs.Config{}, logs.ReadOptions{Stdout: true, Stderr: true, Tail: -1}, func(e logs.Entry) error {
		lines = append(lines, e.Stream+":"+string(e.Line))
		return nil
	})
	if len(lines) != 2 || !strings.Contains(strings.Join(lines, ""), "stdout:out\n") || !strings.Contains(strings.Join(lines, ""), "stderr:err\n") {
		t.Fatalf("log = %q", lines)
	}
	if l := mustList(t, f.c); len(l) != 1 || l[0].Status != Exited || l[0].ExitCode != 7 {
		t.Fatalf("list = %+v", l)
	}
}

func TestStdinOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	events, _ := f.c.Events(ctx)
	f.create("cat", CreateRequest{OpenStdin: true, StdinOnce: true}, testutil.BusyboxBinary, "cat")
	conn, br, err := f.c.Attach(ctx, "cat", true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f.c.Start(ctx, "cat")
	conn.Write([]byte("hello\n"))
	conn.(*net.UnixConn).CloseWrite()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, io.Discard, br)
	if out.String() != "hello\n" {
		t.Fatalf("cat echoed %q", out.String())
	}
	if s := f.waitExit(events, "cat"); s.ExitCode != 0 {
		t.Fatalf("exit %d: closing the attached stdin must end cat", s.ExitCode)
	}
}

func TestTTYAndResize(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	events, _ := f.c.Events(ctx)
	f.create("tty", CreateRequest{TTY: true, OpenStdin: true}, testutil.BusyboxBinary, "sh", "-c", "read -r line; stty size; echo got:$line")
	conn, br, err := f.c.Attach(ctx, "tty", true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := f.c.Resize(ctx, "tty", 33, 101); err != nil {
		t.Fatal(err)
	}
	f.c.Start(ctx, "tty")
	conn.Write([]byte("ping\n"))
	f.waitExit(events, "tty")
	out, _ := io.ReadAll(br)
	// Raw TTY output (no multiplexing), with the pty's CRLF line endings.
	if !strings.Contains(string(out), "33 101\r\n") || !strings.Contains(string(out), "got:ping\r\n") {
		t.Fatalf("tty output %q", out)
	}
	if err := f.c.Resize(ctx, "nope", 1, 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("resize of an unknown task: %v", err)
	}
}

func TestKillAndDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	events, _ := f.c.Events(ctx)
	f.create("sleeper", CreateRequest{}, testutil.BusyboxBinary, "sleep", "100")
	f.c.Start(ctx, "sleeper")
	if err := f.c.Delete(ctx, "sleeper", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete of a running task without force: %v, want conflict", err)
	}
	if err := f.c.Kill(ctx, "sleeper", int(unix.SIGTERM), false); err != nil {
		t.Fatal(err)
	}
	if s := f.waitExit(events, "sleeper"); s.ExitCode != 128+int(unix.SIGTERM) {
		t.Fatalf("exit code %d, want %d", s.ExitCode, 128+int(unix.SIGTERM))
	}
	if err := f.c.Kill(ctx, "sleeper", int(unix.SIGTERM), false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("kill of an exited task: %v, want conflict", err)
	}
	if err := f.c.Delete(ctx, "sleeper", false); err != nil {
		t.Fatal(err)
	}
	if l := mustList(t, f.c); len(l) != 0 {
		t.Fatalf("list after delete = %+v", l)
	}

	f.create("forced", CreateRequest{}, testutil.BusyboxBinary, "sleep", "100")
	f.c.Start(ctx, "forced")
	if err := f.c.Delete(ctx, "forced", true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	f := newFixture(t)
	f.rt.fail = errdefs.Invalidf("process.args: must not be empty")
	bundle := filepath.Join(f.dir, "b")
	os.MkdirAll(bundle, 0o755)
	_, err := f.c.Create(context.Background(), CreateRequest{ID: "bad", Bundle: bundle, Dir: f.dir})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "process.args") {
		t.Fatalf("err = %v: the runtime's error must reach the daemon with its class", err)
	}
	if l := mustList(t, f.c); len(l) != 0 {
		t.Fatalf("a failed create left a task: %+v", l)
	}
	// The id is free again.
	f.create("bad", CreateRequest{}, testutil.BusyboxBinary, "true")
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{ID: "../x", Bundle: "/b", Dir: "/d"},
		{ID: "ok", Bundle: "relative", Dir: "/d"},
		{ID: "ok", Bundle: "/b", Dir: "/d", Log: logs.Config{Type: "syslog"}},
	} {
		if _, err := f.c.Create(ctx, req); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Create(%+v) = %v, want invalid", req, err)
		}
	}
	f.create("dup", CreateRequest{}, testutil.BusyboxBinary, "true")
	if _, err := f.c.Create(ctx, CreateRequest{ID: "dup", Bundle: "/b", Dir: "/d"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("duplicate id: %v, want conflict", err)
	}
	if err := f.c.Start(ctx, "absent"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("start of an absent task: %v", err)
	}
}

func TestIdleMonitorExits(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	m, _ := New(Config{Socket: sock, Runtime: &procRuntime{}, IdleTimeout: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- m.Serve(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle monitor must exit")
	}
}

func TestParseStat(t *testing.T) {
	state, ppid, ok := parseStat("1234 (a (weird) name) Z 99 1234 1234 0 -1")
	if !ok || state != 'Z' || ppid != 99 {
		t.Fatalf("parseStat = %c %d %v", state, ppid, ok)
	}
	if _, _, ok := parseStat("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}

// TestOrphansAreSwept: a grandchild orphaned to the monitor (a subreaper)
// is reaped by the sweep, leaving no zombie.
func TestOrphansAreSwept(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	events, _ := f.c.Events(ctx)
	pidFile := filepath.Join(f.dir, "orphan.pid")
	f.create("parent", CreateRequest{}, testutil.BusyboxBinary, "sh", "-c", "sh -c 'exit 0' & echo $! > "+pidFile+"; sleep 0.1")
	f.c.Start(ctx, "parent")
	f.waitExit(events, "parent")
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return // reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %s still present: %s", pid, bufio.NewScanner(bytes.NewReader(stat)).Text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
