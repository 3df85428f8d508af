package monitor

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth/berth/internal/logs"
)

// task is one supervised container: the monitor holds its stdio, copies
// its output to the log and to attached clients, and records its exit.
type task struct {
	id, dir   string
	bundle    string
	tty       bool
	stdinOnce bool
	pid       int
	log       logs.Driver
	out       *broadcaster
	logger    *slog.Logger
	copiers   sync.WaitGroup
	done      chan struct{} // closed once the exit is recorded
	// cleanup removes what only the monitor created for the task (the
	// console socket's directory).
	cleanup func()

	mu       sync.Mutex     // guards the fields below
	stdin    io.WriteCloser // pipe or pty master; nil without -i
	console  *os.File       // pty master of a TTY container
	status   Status
	exitCode int
	exitedAt time.Time
}

func (t *task) state() TaskState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TaskState{ID: t.id, Pid: t.pid, Status: t.status, ExitCode: t.exitCode, ExitedAt: t.exitedAt}
}

// copyOutput copies one of the container's output streams, as it arrives,
// to attached clients and, split into lines, to the log. A failing log (a
// full disk) is reported once and does not stop the container's output.
func (t *task) copyOutput(r io.ReadCloser, stream byte) {
	defer t.copiers.Done()
	defer r.Close()
	name := "stdout"
	if stream == streamStderr {
		name = "stderr"
	}
	logFailed := false
	lw := logs.NewLineWriter(name, func(e logs.Entry) error {
		if err := t.log.Write(e); err != nil && !logFailed {
			logFailed = true
			t.logger.Error("writing container log failed; output still reaches attached clients", "err", err)
		}
		return nil
	}, nil)
	buf := make([]byte, 8<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			t.out.write(stream, buf[:n])
			lw.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	lw.Close()
}

// exited records the exit: it waits (bounded) for the output to drain,
// closes the log, writes the exit record, and then announces it.
func (t *task) exited(code int, at time.Time, announce func(TaskState)) {
	drained := make(chan struct{})
	go func() { t.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		// A process outside the container's pid namespace (--pid host) may
		// still hold the pipes; the container itself is gone.
		t.logger.Warn("container output still open 2s after its exit; closing it")
	}
	t.mu.Lock()
	if t.stdin != nil {
		t.stdin.Close()
		t.stdin = nil
	}
	if t.console != nil {
		t.console.Close()
		t.console = nil
	}
	t.status, t.exitCode, t.exitedAt = Exited, code, at
	t.mu.Unlock()
	if err := t.log.Close(); err != nil {
		t.logger.Warn("closing container log", "err", err)
	}
	if t.dir == "" {
		// An exec: no exit record.
	} else if err := writeExitRecord(t.dir, ExitRecord{ExitCode: code, ExitedAt: at}); err != nil {
		t.logger.Error("recording the exit failed", "err", err)
	}
	t.out.closeAll()
	close(t.done)
	announce(t.state())
}

// writeExitRecord writes <dir>/exit.json atomically.
func writeExitRecord(dir string, rec ExitRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".exit.json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "exit.json"))
}

// ReadExitRecord reads the exit record the monitor wrote in dir; it is
// how the daemon learns an exit that happened while nobody listened.
func ReadExitRecord(dir string) (ExitRecord, error) {
	var rec ExitRecord
	b, err := os.ReadFile(filepath.Join(dir, "exit.json"))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("corrupt exit record in %s: %w", dir, err)
	}
	return rec, nil
}

// Stream ids of Docker's multiplexed stream format.
const (
	streamStdout byte = 1
	streamStderr byte = 2
)

// broadcaster hands a task's output to the clients attached to it.
type broadcaster struct {
	tty bool
	mu  sync.Mutex // guards subs
	// subs are the attached clients; a client that does not read for
	// writeTimeout is detached rather than stalling the container.
	subs map[*subscriber]struct{}
}

type subscriber struct {
	conn           net.Conn
	stdout, stderr bool
	gone           chan struct{} // closed when detached
}

const writeTimeout = 5 * time.Second

func newBroadcaster(tty bool) *broadcaster {
	return &broadcaster{tty: tty, subs: map[*subscriber]struct{}{}}
}

// add writes header to the subscriber's connection and subscribes it, in
// one step: no output can come before the header or be missed after it.
func (b *broadcaster) add(s *subscriber, header []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(header); err != nil {
		return err
	}
	b.subs[s] = struct{}{}
	return nil
}

func (b *broadcaster) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.gone)
	}
}

// write sends p, from stream, to every subscriber that wants it: raw for a
// TTY container, framed in Docker's multiplexed format otherwise.
func (b *broadcaster) write(stream byte, p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return
	}
	frame := p
	if !b.tty {
		frame = make([]byte, 8+len(p))
		frame[0] = stream
		binary.BigEndian.PutUint32(frame[4:8], uint32(len(p)))
		copy(frame[8:], p)
	}
	for s := range b.subs {
		if (stream == streamStdout && !s.stdout) || (stream == streamStderr && !s.stderr) {
			continue
		}
		s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := s.conn.Write(frame); err != nil {
			delete(b.subs, s)
			close(s.gone)
		}
	}
}

// closeAll detaches every client: the container has exited.
func (b *broadcaster) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		delete(b.subs, s)
		close(s.gone)
	}
}
