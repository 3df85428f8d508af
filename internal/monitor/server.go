package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/logs"
)

func (m *Monitor) handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				writeJSON(w, errdefs.HTTPStatus(err), map[string]string{"message": err.Error()})
			}
		})
	}
	handle("POST /tasks", func(w http.ResponseWriter, r *http.Request) error {
		var req CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return errdefs.Invalidf("decode create request: %v", err)
		}
		resp, err := m.create(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, resp)
	})
	handle("GET /tasks", func(w http.ResponseWriter, r *http.Request) error {
		m.mu.Lock()
		out := make([]TaskState, 0, len(m.tasks))
		for _, t := range m.tasks {
			if t != nil { // nil: reserved while being created
				out = append(out, t.state())
			}
		}
		m.mu.Unlock()
		return writeJSON(w, http.StatusOK, out)
	})
	handle("POST /tasks/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		return m.start(r.Context(), r.PathValue("id"))
	})
	handle("POST /tasks/{id}/kill", func(w http.ResponseWriter, r *http.Request) error {
		var req KillRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return errdefs.Invalidf("decode kill request: %v", err)
		}
		t, err := m.task(r.PathValue("id"))
		if err != nil {
			return err
		}
		if t.state().Status == Exited {
			return errdefs.Conflictf("container %s is not running", t.id)
		}
		return m.cfg.Runtime.Kill(r.Context(), t.id, syscall.Signal(req.Signal), req.All)
	})
	handle("POST /tasks/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		var req ResizeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return errdefs.Invalidf("decode resize request: %v", err)
		}
		return m.resize(r.PathValue("id"), req)
	})
	handle("POST /tasks/{id}/attach", m.attach)
	handle("DELETE /tasks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		return m.delete(r.Context(), r.PathValue("id"), r.URL.Query().Get("force") == "1")
	})
	handle("GET /events", m.events)
	handle("POST /execs", m.execHandler)
	handle("GET /execs/{id}", func(w http.ResponseWriter, r *http.Request) error {
		e, err := m.execTask(r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, e.state())
	})
	handle("DELETE /execs/{id}", func(w http.ResponseWriter, r *http.Request) error {
		return m.deleteExec(r.PathValue("id"))
	})
	handle("POST /execs/{id}/kill", func(w http.ResponseWriter, r *http.Request) error {
		var req KillRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return errdefs.Invalidf("decode kill request: %v", err)
		}
		e, err := m.execTask(r.PathValue("id"))
		if err != nil {
			return err
		}
		return e.kill(syscall.Signal(req.Signal))
	})
	handle("POST /execs/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		var req ResizeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return errdefs.Invalidf("decode resize request: %v", err)
		}
		e, err := m.execTask(r.PathValue("id"))
		if err != nil {
			return err
		}
		return e.resize(req)
	})
	return mux
}

// validID is a task id's syntax; its length (at most 128) is checked apart:
// a counted repetition compiles to one state per count, a large program
// built at every start of the binary.
var validID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// create sets up a task's stdio and log, has the runtime fork its init,
// and starts supervising it. On failure nothing is left behind.
func (m *Monitor) create(ctx context.Context, req CreateRequest) (resp CreateResponse, err error) {
	switch {
	case len(req.ID) > 128 || !validID.MatchString(req.ID):
		return resp, errdefs.Invalidf("task id %q: want letters, digits, '_', '.' or '-'", req.ID)
	case !filepath.IsAbs(req.Bundle) || !filepath.IsAbs(req.Dir):
		return resp, errdefs.Invalidf("bundle and dir must be absolute paths")
	}
	if err := logs.ValidateConfig(req.Log); err != nil {
		return resp, err
	}
	m.mu.Lock()
	if _, dup := m.tasks[req.ID]; dup {
		m.mu.Unlock()
		return resp, errdefs.Conflictf("task %s exists", req.ID)
	}
	m.tasks[req.ID] = nil // reserved while it is being created
	m.mu.Unlock()

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			m.mu.Lock()
			delete(m.tasks, req.ID)
			m.mu.Unlock()
		}
	}()
	logger := taskLogger(ctx, req.ID)
	t := &task{
		id: req.ID, dir: req.Dir, bundle: req.Bundle, tty: req.TTY, stdinOnce: req.StdinOnce,
		out: newBroadcaster(req.TTY), logger: logger, done: make(chan struct{}),
		status: Created, cleanup: func() {},
	}
	if t.log, err = logs.Open(req.Dir, req.ID, req.Log); err != nil {
		return resp, fmt.Errorf("open container log: %w", err)
	}
	undo = append(undo, func() { t.log.Close() })

	var stdio Stdio
	var childEnds []*os.File // given to the runtime; closed here once it has them
	var outputs []*os.File   // read by the copiers
	var consoleDone <-chan consoleResult
	if req.TTY {
		dir, err := os.MkdirTemp("", "berth-console-")
		if err != nil {
			return resp, err
		}
		undo = append(undo, func() { os.RemoveAll(dir) })
		t.cleanup = func() { os.RemoveAll(dir) }
		stdio.ConsoleSocket = filepath.Join(dir, "console.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stdio.ConsoleSocket, Net: "unix"})
		if err != nil {
			return resp, fmt.Errorf("console socket: %w", err)
		}
		undo = append(undo, func() { l.Close() })
		consoleDone = receiveConsole(l)
	} else {
		if req.OpenStdin {
			r, w, err := os.Pipe()
			if err != nil {
				return resp, err
			}
			stdio.Stdin, t.stdin = r, w
			childEnds = append(childEnds, r)
			undo = append(undo, func() { w.Close() })
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return resp, err
			}
			stdio.Stdin = null
			childEnds = append(childEnds, null)
		}
		for _, dst := range []**os.File{&stdio.Stdout, &stdio.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(childEnds)
				return resp, err
			}
			*dst = w
			childEnds = append(childEnds, w)
			outputs = append(outputs, r)
			undo = append(undo, func() { r.Close() })
		}
	}

	pid, err := m.cfg.Runtime.Create(ctx, req.ID, req.Bundle, stdio)
	closeAll(childEnds)
	if err != nil {
		return resp, err
	}
	undo = append(undo, func() {
		m.cfg.Runtime.Delete(context.WithoutCancel(ctx), req.ID, true)
	})
	if err := ctx.Err(); err != nil {
		// The daemon that asked went away (killed mid-request): nobody
		// will start or delete this task, so it is not made.
		return resp, fmt.Errorf("create %s: the requester is gone: %w", req.ID, err)
	}
	if req.TTY {
		select {
		case res := <-consoleDone:
			if res.err != nil {
				return resp, fmt.Errorf("receive the container's pty: %w", res.err)
			}
			t.console = res.master
			if req.OpenStdin {
				t.stdin = res.master
			}
			outputs = append(outputs, res.master)
		case <-time.After(10 * time.Second):
			return resp, errdefs.Unavailable(errors.New("the runtime did not send the container's pty within 10s"))
		}
	}

	t.pid = pid
	streams := []byte{streamStdout, streamStderr}
	for i, r := range outputs {
		t.copiers.Add(1)
		go t.copyOutput(r, streams[i])
	}
	m.mu.Lock()
	m.tasks[req.ID] = t
	m.mu.Unlock()
	m.reaper.watch(pid, func(code int) {
		go t.exited(code, time.Now().UTC(), m.announce)
	})
	logger.Info("container created", "pid", pid)
	return CreateResponse{Pid: pid}, nil
}

type consoleResult struct {
	master *os.File
	err    error
}

// receiveConsole accepts one connection on l and reads the pty master the
// runtime sends over it (SCM_RIGHTS), then closes l.
func receiveConsole(l *net.UnixListener) <-chan consoleResult {
	ch := make(chan consoleResult, 1)
	go func() {
		defer l.Close()
		l.SetDeadline(time.Now().Add(30 * time.Second))
		conn, err := l.AcceptUnix()
		if err != nil {
			ch <- consoleResult{err: err}
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- consoleResult{err: err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			ch <- consoleResult{err: fmt.Errorf("no file descriptor in the console message")}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			ch <- consoleResult{err: fmt.Errorf("want one pty fd in the console message")}
			return
		}
		ch <- consoleResult{master: os.NewFile(uintptr(fds[0]), "pty-master")}
	}()
	return ch
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func (m *Monitor) start(ctx context.Context, id string) error {
	t, err := m.task(id)
	if err != nil {
		return err
	}
	if s := t.state().Status; s != Created {
		return errdefs.Conflictf("container %s is %s, not created", id, s)
	}
	if err := m.cfg.Runtime.Start(ctx, id); err != nil {
		return err
	}
	t.mu.Lock()
	if t.status == Created {
		t.status = Running
	}
	t.mu.Unlock()
	m.announce(t.state())
	return nil
}

func (m *Monitor) resize(id string, req ResizeRequest) error {
	t, err := m.task(id)
	if err != nil {
		return err
	}
	return t.resize(req)
}

func (t *task) resize(req ResizeRequest) error {
	id := t.id
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.console == nil {
		return errdefs.Conflictf("container %s has no TTY", id)
	}
	return unix.IoctlSetWinsize(int(t.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Height, Col: req.Width})
}

// delete forgets an exited task and has the runtime delete it; force kills
// a live one first.
func (m *Monitor) delete(ctx context.Context, id string, force bool) error {
	t, err := m.task(id)
	if err != nil {
		return err
	}
	if t.state().Status != Exited {
		if !force {
			return errdefs.Conflictf("container %s is running: stop it first, or force", id)
		}
		if err := m.cfg.Runtime.Kill(ctx, id, syscall.SIGKILL, true); err != nil {
			return err
		}
		select {
		case <-t.done:
		case <-time.After(10 * time.Second):
			return errdefs.Unavailable(fmt.Errorf("container %s did not exit 10s after SIGKILL", id))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := m.cfg.Runtime.Delete(ctx, id, false); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	m.mu.Lock()
	delete(m.tasks, id)
	m.mu.Unlock()
	m.forgetExecs(id)
	t.cleanup()
	return nil
}

// attach hijacks the connection: the task's output flows to it (raw for a
// TTY, multiplexed otherwise) until the container exits or the client goes;
// with stdin=1, what the client sends goes to the container's stdin.
func (m *Monitor) attach(w http.ResponseWriter, r *http.Request) error {
	t, err := m.task(r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	wantStdin := q.Get("stdin") == "1"
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errdefs.Invalidf("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	sub := &subscriber{conn: conn, stdout: q.Get("stdout") == "1", stderr: q.Get("stderr") == "1", gone: make(chan struct{})}
	// The client starts the container as soon as it reads the 101: the
	// subscriber must be in place by then, or the first output is lost.
	if err := t.out.add(sub, []byte("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")); err != nil {
		return nil
	}
	select {
	case <-t.done:
		t.out.remove(sub)
		return nil // exited already: nothing more will come
	default:
	}
	defer t.out.remove(sub)
	go m.copyStdin(t, rw.Reader, wantStdin, sub)
	select {
	case <-sub.gone:
	case <-t.done:
	}
	return nil
}

// copyStdin feeds what an attached client sends to the container's stdin
// (if it asked to); when the client closes its side, stdin is closed too
// for a StdinOnce container, and a client that sent nothing is detached.
func (m *Monitor) copyStdin(t *task, r *bufio.Reader, wantStdin bool, sub *subscriber) {
	t.mu.Lock()
	stdin := t.stdin
	t.mu.Unlock()
	if wantStdin && stdin != nil {
		io.Copy(stdin, r)
		if t.stdinOnce {
			t.mu.Lock()
			if t.stdin != nil && !t.tty {
				t.stdin.Close()
				t.stdin = nil
			}
			t.mu.Unlock()
		}
		return
	}
	io.Copy(io.Discard, r) // returns when the client goes away
	t.out.remove(sub)
}

// events streams task state changes, one JSON object per line.
func (m *Monitor) events(w http.ResponseWriter, r *http.Request) error {
	ch := make(chan TaskState, 1024)
	m.mu.Lock()
	m.listeners[ch] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if _, ok := m.listeners[ch]; ok {
			delete(m.listeners, ch)
			close(ch)
		}
		m.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return nil
			}
			if err := enc.Encode(s); err != nil {
				return nil
			}
			if f != nil {
				f.Flush()
			}
		case <-r.Context().Done():
			log.From(r.Context()).Debug("events subscriber gone")
			return nil
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}
