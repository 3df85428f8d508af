package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/logs"
)

// Execer is the optional part of Runtime that runs a process in a running
// container (the monitor is its parent, as of every init).
type Execer interface {
	Exec(ctx context.Context, id string, p *specs.Process, stdio Stdio) (pid int, err error)
}

// ExecRequest runs a process in a task's container:
//
//	POST /execs                    ExecRequest → ExecResponse     Detach: run it, answer its pid
//	POST /execs?attach=1           ExecRequest, hijacked           output (raw for a TTY, multiplexed
//	                                                              otherwise) and stdin, as attach
//	GET  /execs/{id}               → TaskState                     running or its exit code
//	POST /execs/{id}/resize        ResizeRequest                   set its pty size
//
// An exec lives as long as its container's task: it is forgotten with it.
type ExecRequest struct {
	ID        string // the exec's id
	Container string // the task it runs in
	Process   *specs.Process
	OpenStdin bool
	// With attach=1: which streams the client wants.
	Stdout, Stderr bool
}

// ExecResponse tells the pid of an exec'd process.
type ExecResponse struct {
	Pid int
}

// execTask is an exec'd process: a task (stdio, broadcaster, exit code)
// that belongs to a container's task and writes no log or exit record.
type execTask struct {
	*task
	container string
	reaped    bool // guarded by task.mu: its pid is no longer its own
}

func (m *Monitor) execTask(id string) (*execTask, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.execs[id]
	if !ok {
		return nil, errdefs.NotFoundf("no such exec: %s", id)
	}
	return e, nil
}

// forgetExecs drops the execs of a container's task being deleted.
func (m *Monitor) forgetExecs(container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, e := range m.execs {
		if e.container == container {
			delete(m.execs, id)
			e.cleanup()
		}
	}
}

// discardLog is the log of an exec: Docker logs only the container's
// main process.
type discardLog struct{}

func (discardLog) Write(logs.Entry) error { return nil }
func (discardLog) Close() error           { return nil }

// execHandler is POST /execs.
func (m *Monitor) execHandler(w http.ResponseWriter, r *http.Request) error {
	var req ExecRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return errdefs.Invalidf("decode exec request: %v", err)
	}
	ex, ok := m.cfg.Runtime.(Execer)
	if !ok {
		return errdefs.NotImplemented(errors.New("exec: this monitor's runtime cannot exec"))
	}
	switch {
	case !validID.MatchString(req.ID):
		return errdefs.Invalidf("exec id %q: want letters, digits, '_', '.' or '-'", req.ID)
	case req.Process == nil || len(req.Process.Args) == 0:
		return errdefs.Invalidf("exec %s: no command", req.ID)
	}
	ct, err := m.task(req.Container)
	if err != nil {
		return err
	}
	if ct.state().Status != Running {
		return errdefs.Conflictf("container %s is not running", req.Container)
	}
	tty := req.Process.Terminal
	t := &task{
		id: req.ID, tty: tty, stdinOnce: true, out: newBroadcaster(tty), log: discardLog{},
		logger: taskLogger(r.Context(), req.Container).With("exec", req.ID), done: make(chan struct{}),
		status: Running, cleanup: func() {},
	}
	e := &execTask{task: t, container: req.Container}
	m.mu.Lock()
	if _, dup := m.execs[req.ID]; dup {
		m.mu.Unlock()
		return errdefs.Conflictf("exec %s exists", req.ID)
	}
	m.execs[req.ID] = e
	m.mu.Unlock()
	failed := true
	defer func() {
		if failed {
			m.mu.Lock()
			delete(m.execs, req.ID)
			m.mu.Unlock()
			t.cleanup()
		}
	}()

	// The client is subscribed before the process runs: no output is lost.
	attach := r.URL.Query().Get("attach") == "1"
	var conn net.Conn
	var rw *bufio.ReadWriter
	var sub *subscriber
	if attach {
		hj, ok := w.(http.Hijacker)
		if !ok {
			return errdefs.Invalidf("connection cannot be hijacked")
		}
		if conn, rw, err = hj.Hijack(); err != nil {
			return err
		}
		defer conn.Close()
		sub = &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr, gone: make(chan struct{})}
		if err := t.out.add(sub, []byte("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")); err != nil {
			return nil
		}
	}
	pid, err := m.runExec(r.Context(), ex, e, req)
	if err != nil {
		if !attach {
			return err
		}
		// Past the 101: the error goes down the stream, as Docker does,
		// and the exec records 126 (127: no such command).
		code := 126
		if errors.Is(err, errdefs.ErrNotFound) {
			code = 127
		}
		t.out.write(streamStderr, []byte("berth: exec failed: "+err.Error()+"\n"))
		failed = false
		t.mu.Lock()
		t.status, t.exitCode, t.exitedAt = Exited, code, time.Now().UTC()
		t.mu.Unlock()
		t.out.closeAll()
		close(t.done)
		return nil
	}
	failed = false
	if !attach {
		return writeJSON(w, http.StatusCreated, ExecResponse{Pid: pid})
	}
	go m.copyStdin(t, rw.Reader, req.OpenStdin, sub)
	select {
	case <-sub.gone:
	case <-t.done:
	}
	t.out.remove(sub)
	return nil
}

// runExec sets up the exec's stdio as create does for a container, has
// the runtime run the process, and supervises it.
func (m *Monitor) runExec(ctx context.Context, ex Execer, e *execTask, req ExecRequest) (pid int, err error) {
	t := e.task
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	var stdio Stdio
	var childEnds, outputs []*os.File
	var consoleDone <-chan consoleResult
	if t.tty {
		dir, err := os.MkdirTemp("", "berth-console-")
		if err != nil {
			return 0, err
		}
		undo = append(undo, func() { os.RemoveAll(dir) })
		t.cleanup = func() { os.RemoveAll(dir) }
		stdio.ConsoleSocket = filepath.Join(dir, "console.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stdio.ConsoleSocket, Net: "unix"})
		if err != nil {
			return 0, fmt.Errorf("console socket: %w", err)
		}
		undo = append(undo, func() { l.Close() })
		consoleDone = receiveConsole(l)
	} else {
		if req.OpenStdin {
			r, w, err := os.Pipe()
			if err != nil {
				return 0, err
			}
			stdio.Stdin, t.stdin = r, w
			childEnds = append(childEnds, r)
			undo = append(undo, func() { w.Close() })
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return 0, err
			}
			stdio.Stdin = null
			childEnds = append(childEnds, null)
		}
		for _, dst := range []**os.File{&stdio.Stdout, &stdio.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(childEnds)
				return 0, err
			}
			*dst = w
			childEnds = append(childEnds, w)
			outputs = append(outputs, r)
			undo = append(undo, func() { r.Close() })
		}
	}
	pid, err = ex.Exec(ctx, e.container, req.Process, stdio)
	closeAll(childEnds)
	if err != nil {
		return 0, err
	}
	if t.tty {
		select {
		case res := <-consoleDone:
			if res.err != nil {
				return 0, fmt.Errorf("receive the exec's pty: %w", res.err)
			}
			t.console = res.master
			if req.OpenStdin {
				t.stdin = res.master
			}
			outputs = append(outputs, res.master)
		case <-time.After(10 * time.Second):
			return 0, errdefs.Unavailable(errors.New("the runtime did not send the exec's pty within 10s"))
		}
	}
	t.mu.Lock()
	t.pid = pid
	t.mu.Unlock()
	streams := []byte{streamStdout, streamStderr}
	for i, r := range outputs {
		t.copiers.Add(1)
		go t.copyOutput(r, streams[i])
	}
	m.reaper.watch(pid, func(code int) {
		t.mu.Lock()
		e.reaped = true
		t.mu.Unlock()
		go t.exited(code, time.Now().UTC(), func(TaskState) {})
	})
	t.logger.Info("process exec'd", "pid", pid)
	return pid, nil
}

// Exec runs a process in a task's container and returns its pid; it runs
// unattached (its output is discarded unless it has a terminal).
func (c *Client) Exec(ctx context.Context, req ExecRequest) (ExecResponse, error) {
	var resp ExecResponse
	err := c.call(ctx, http.MethodPost, "/execs", req, &resp)
	return resp, err
}

// ExecAttach runs a process in a task's container with the returned
// connection attached to it, as Attach.
func (c *Client) ExecAttach(ctx context.Context, req ExecRequest) (net.Conn, *bufio.Reader, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	return c.hijack(ctx, "/execs?attach=1", b)
}

// ExecState returns an exec's state: running, or exited with its code.
func (c *Client) ExecState(ctx context.Context, id string) (TaskState, error) {
	var s TaskState
	err := c.call(ctx, http.MethodGet, "/execs/"+url.PathEscape(id), nil, &s)
	return s, err
}

// ExecResize sets an exec's terminal size.
func (c *Client) ExecResize(ctx context.Context, id string, height, width uint16) error {
	return c.call(ctx, http.MethodPost, "/execs/"+url.PathEscape(id)+"/resize", ResizeRequest{Height: height, Width: width}, nil)
}

// kill signals a running exec. The monitor is its parent and reaps it, so
// under the task's lock, until the reaper has marked it reaped, its pid is
// its own.
func (e *execTask) kill(sig syscall.Signal) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reaped || e.status == Exited || e.pid == 0 {
		return errdefs.Conflictf("exec %s is not running", e.id)
	}
	return unix.Kill(e.pid, sig)
}

// ExecKill signals a running exec.
func (c *Client) ExecKill(ctx context.Context, id string, sig int) error {
	return c.call(ctx, http.MethodPost, "/execs/"+url.PathEscape(id)+"/kill", KillRequest{Signal: sig}, nil)
}

// deleteExec forgets an exited exec.
func (m *Monitor) deleteExec(id string) error {
	e, err := m.execTask(id)
	if err != nil {
		return err
	}
	if e.state().Status != Exited {
		return errdefs.Conflictf("exec %s is running", id)
	}
	m.mu.Lock()
	delete(m.execs, id)
	m.mu.Unlock()
	e.cleanup()
	return nil
}

// ExecDelete forgets an exited exec.
func (c *Client) ExecDelete(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/execs/"+url.PathEscape(id), nil, nil)
}
