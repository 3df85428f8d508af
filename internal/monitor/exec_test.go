package monitor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// Exec runs p's argv under busybox as a plain child, as Create does.
func (p *procRuntime) Exec(ctx context.Context, id string, proc *specs.Process, stdio Stdio) (int, error) {
	p.mu.Lock()
	_, ok := p.procs[id]
	p.mu.Unlock()
	if !ok {
		return 0, errdefs.NotFoundf("no such container %s", id)
	}
	if proc.Args[0] == "nosuch" {
		return 0, errdefs.NotFoundf("process.args[0]: %q: executable file not found in $PATH", proc.Args[0])
	}
	cmd := exec.Command(testutil.BusyboxBinary, proc.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if stdio.ConsoleSocket != "" {
		master, slave, err := openPTY()
		if err != nil {
			return 0, err
		}
		defer master.Close()
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
	return cmd.Process.Pid, nil // the monitor's reaper collects it
}

// runningTask makes a started task that sleeps.
func (f *fixture) runningTask(id string) {
	f.t.Helper()
	f.create(id, CreateRequest{}, testutil.BusyboxBinary, "sleep", "1000")
	if err := f.c.Start(context.Background(), id); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) waitExecExit(id string) TaskState {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := f.c.ExecState(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if s.Status == Exited {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("exec %s did not exit", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExecAttached(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.runningTask("box")
	conn, br, err := f.c.ExecAttach(ctx, ExecRequest{ID: "e1", Container: "box", Stdout: true, Stderr: true,
		Process: &specs.Process{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, br); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("output %q %q", stdout.String(), stderr.String())
	}
	if s := f.waitExecExit("e1"); s.ExitCode != 7 || s.Pid == 0 {
		t.Errorf("state %+v, want exit 7", s)
	}
	// Its code read, the daemon has it forgotten.
	if err := f.c.ExecDelete(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.ExecState(ctx, "e1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted exec: %v", err)
	}

	// stdin reaches the process; the client's half-close ends it.
	conn, br, err = f.c.ExecAttach(ctx, ExecRequest{ID: "e2", Container: "box", OpenStdin: true, Stdout: true,
		Process: &specs.Process{Args: []string{"cat"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "typed\n")
	conn.(interface{ CloseWrite() error }).CloseWrite()
	stdout.Reset()
	stdcopy.StdCopy(&stdout, io.Discard, br)
	if stdout.String() != "typed\n" {
		t.Errorf("stdin: %q", stdout.String())
	}

	// A TTY exec: raw output from the pty.
	conn, br, err = f.c.ExecAttach(ctx, ExecRequest{ID: "e3", Container: "box", Stdout: true,
		Process: &specs.Process{Terminal: true, Args: []string{"sh", "-c", "tty"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, _ := io.ReadAll(br)
	if !strings.Contains(string(raw), "/dev/pts/") {
		t.Errorf("tty output %q", raw)
	}

	// A command the runtime cannot run: the error in the stream, 127.
	conn, br, err = f.c.ExecAttach(ctx, ExecRequest{ID: "e4", Container: "box", Stdout: true, Stderr: true,
		Process: &specs.Process{Args: []string{"nosuch"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stderr.Reset()
	stdcopy.StdCopy(io.Discard, &stderr, br)
	if !strings.Contains(stderr.String(), "nosuch") {
		t.Errorf("error in the stream: %q", stderr.String())
	}
	if s := f.waitExecExit("e4"); s.ExitCode != 127 {
		t.Errorf("failed exec: %+v, want 127", s)
	}
}

func TestExecDetachedKillAndForget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.runningTask("box")
	resp, err := f.c.Exec(ctx, ExecRequest{ID: "d1", Container: "box", Process: &specs.Process{Args: []string{"sleep", "1000"}}})
	if err != nil || resp.Pid == 0 {
		t.Fatalf("detached exec: %v %+v", err, resp)
	}
	if s, err := f.c.ExecState(ctx, "d1"); err != nil || s.Status != Running || s.Pid != resp.Pid {
		t.Errorf("state: %v %+v", err, s)
	}
	if err := f.c.ExecDelete(ctx, "d1"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("deleting a running exec: %v, want Conflict", err)
	}
	if _, err := f.c.Exec(ctx, ExecRequest{ID: "d1", Container: "box", Process: &specs.Process{Args: []string{"true"}}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("duplicate exec id: %v, want Conflict", err)
	}
	if err := f.c.ExecKill(ctx, "d1", int(unix.SIGKILL)); err != nil {
		t.Fatal(err)
	}
	if s := f.waitExecExit("d1"); s.ExitCode != 137 {
		t.Errorf("killed exec: %+v, want 137", s)
	}
	if err := f.c.ExecKill(ctx, "d1", int(unix.SIGKILL)); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("killing an exited exec: %v, want Conflict", err)
	}
	// Execs are forgotten with their container's task.
	if _, err := f.c.Exec(ctx, ExecRequest{ID: "d2", Container: "box", Process: &specs.Process{Args: []string{"true"}}}); err != nil {
		t.Fatal(err)
	}
	f.waitExecExit("d2")
	if err := f.c.Delete(ctx, "box", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.ExecState(ctx, "d2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("exec of a deleted task: %v, want NotFound", err)
	}
}

func TestExecRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create("created", CreateRequest{}, testutil.BusyboxBinary, "true")
	proc := &specs.Process{Args: []string{"true"}}
	if _, err := f.c.Exec(ctx, ExecRequest{ID: "x", Container: "nosuch", Process: proc}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("no such task: %v", err)
	}
	if _, err := f.c.Exec(ctx, ExecRequest{ID: "x", Container: "created", Process: proc}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("task not started: %v, want Conflict", err)
	}
	if _, _, err := f.c.ExecAttach(ctx, ExecRequest{ID: "x", Container: "created", Process: proc}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("attached, task not started: %v, want Conflict", err)
	}
	if _, err := f.c.Exec(ctx, ExecRequest{ID: "bad/id", Container: "created", Process: proc}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad exec id: %v, want Invalid", err)
	}
	if _, err := f.c.ExecState(ctx, "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("refused execs are not kept: %v", err)
	}
}
