package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/monitor"
)

// startMonitor returns a client of the exec root's monitor, starting
// `berth monitor` when none answers. The monitor is started in a session
// of its own, outside the daemon's process group, so that it outlives the
// daemon; it exits by itself once it has no containers and no daemon.
func startMonitor(ctx context.Context, execRoot, binary string) (*monitor.Client, error) {
	sock := filepath.Join(execRoot, "monitor.sock")
	c := monitor.NewClient(sock)
	if c.Ping(ctx) == nil {
		return c, nil
	}
	self := binary
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the berth binary to start the monitor: %w", err)
		}
	}
	logPath := filepath.Join(execRoot, "monitor.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "monitor", "--socket", sock)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the monitor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it dies at once
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c.Ping(ctx) == nil {
			log.From(ctx).Info("monitor started", "pid", cmd.Process.Pid, "log", logPath)
			return c, nil
		}
		select {
		case err := <-exited:
			return nil, errdefs.Unavailable(fmt.Errorf("the monitor exited at start (%v); see %s", err, logPath))
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, errdefs.Unavailable(fmt.Errorf("the monitor did not answer within 10s; see %s", logPath))
}
