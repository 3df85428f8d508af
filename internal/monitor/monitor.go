// Package monitor is berth's host-wide container supervisor: one small
// process, `berth monitor`, that is the parent and subreaper of every
// container, holds their stdio, writes their logs and records their exit
// codes, so containers keep running, logging and keeping their exit codes
// while the daemon crashes, restarts or is upgraded. The daemon drives it
// over a unix socket (see proto.go) and reattaches after a restart.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/idle"
	"github.com/berth/berth/internal/log"
)

// Stdio is what a container's init gets as its standard streams: files for
// plain stdio, or, for a TTY container, the path of a socket on which the
// runtime sends back the pty master (runc's --console-socket).
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
	ConsoleSocket         string
}

// Runtime is what the monitor needs of the OCI runtime, which it hosts in
// its own process so that every container's init is its child.
type Runtime interface {
	// Create forks the container's init from the bundle and returns its
	// pid; the init waits before exec'ing the user process until Start.
	Create(ctx context.Context, id, bundle string, stdio Stdio) (pid int, err error)
	// Start releases the init to exec the user process. It need not wait
	// for the exec, but then Kill must (a signal the init got instead
	// would be lost).
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// Delete removes the runtime's record of a stopped container, and its
	// cgroup; force kills it first.
	Delete(ctx context.Context, id string, force bool) error
}

// Config is what a monitor is built from.
type Config struct {
	Socket  string // where to listen (<exec-root>/monitor.sock)
	Runtime Runtime
	// IdleTimeout ends the monitor once it has had no task and no client
	// for that long; 0 means never. It keeps a host without containers free
	// of berth processes once the daemon is gone.
	IdleTimeout time.Duration
	// SweepInterval is how often unclaimed zombies are looked for (default 5s).
	SweepInterval time.Duration
}

// Monitor supervises tasks. Build it with New, run it with Serve.
type Monitor struct {
	cfg    Config
	reaper *reaper
	conns  atomic.Int64 // open client connections

	mu        sync.Mutex // guards tasks and listeners
	tasks     map[string]*task
	execs     map[string]*execTask        // by exec id
	listeners map[chan TaskState]struct{} // GET /events subscribers
}

// New returns a monitor for cfg.
func New(cfg Config) (*Monitor, error) {
	if cfg.Runtime == nil || cfg.Socket == "" {
		return nil, errdefs.Invalidf("monitor: a runtime and a socket path are required")
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	return &Monitor{cfg: cfg, reaper: newReaper(), tasks: map[string]*task{}, execs: map[string]*execTask{}, listeners: map[chan TaskState]struct{}{}}, nil
}

// Serve makes this process the subreaper of its descendants, listens, and
// serves until ctx ends or the monitor has been idle for IdleTimeout.
// Containers are left running when it returns.
func (m *Monitor) Serve(ctx context.Context) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	l, err := listenSocket(m.cfg.Socket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go m.reaper.run(ctx, m.cfg.SweepInterval)
	// As the daemon, the monitor gives back what a burst of creates grew.
	release := idle.New(ctx, 10*time.Second)
	go release.Run(ctx)
	srv := &http.Server{
		Handler:     release.Wrap(m.handler()),
		BaseContext: func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				m.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				m.conns.Add(-1)
			}
		},
	}
	if m.cfg.IdleTimeout > 0 {
		go m.exitWhenIdle(ctx, cancel)
	}
	go func() { <-ctx.Done(); srv.Close() }()
	log.From(ctx).Info("monitor listening", "socket", m.cfg.Socket)
	err = srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (m *Monitor) exitWhenIdle(ctx context.Context, stop context.CancelFunc) {
	tick := time.NewTicker(m.cfg.IdleTimeout / 4)
	defer tick.Stop()
	var idleSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			m.mu.Lock()
			idle := len(m.tasks) == 0 && m.conns.Load() <= 0
			m.mu.Unlock()
			switch {
			case !idle:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = now
			case now.Sub(idleSince) >= m.cfg.IdleTimeout:
				log.From(ctx).Info("monitor idle: no containers and no daemon; exiting")
				stop()
				return
			}
		}
	}
}

// listenSocket listens on path, replacing a socket nobody answers on, with
// access for root only.
func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errdefs.Conflictf("a monitor is already serving on %s", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("monitor: listen on %s: %w", path, err)
	}
	return l, nil
}

// announce sends a task's new state to every /events subscriber. A
// subscriber too slow to keep up is dropped; it reconciles with GET /tasks.
func (m *Monitor) announce(s TaskState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.listeners {
		select {
		case ch <- s:
		default:
			delete(m.listeners, ch)
			close(ch)
		}
	}
}

func (m *Monitor) task(id string) (*task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, errdefs.NotFoundf("no such task: %s", id)
	}
	if t == nil {
		return nil, errdefs.Conflictf("task %s is being created", id)
	}
	return t, nil
}

// logger for a task.
func taskLogger(ctx context.Context, id string) *slog.Logger {
	return log.From(ctx).With("container", id)
}
