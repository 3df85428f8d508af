package main

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/monitor"
	"github.com/berth/berth/internal/ociruntime"
)

// newMonitorCommand is the hidden `berth monitor` role: the host-wide
// supervisor the daemon starts, hosting berth's runtime in-process.
func newMonitorCommand() *cobra.Command {
	var socket, root string
	var idle time.Duration
	var spare bool
	cmd := &cobra.Command{
		Use:    "monitor",
		Short:  "Supervise containers for the daemon (started by berth daemon)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" {
				root = filepath.Join(filepath.Dir(socket), "runtime")
			}
			ctx := log.WithLogger(cmd.Context(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
			rt := &ociruntime.Runtime{Root: root, Spare: spare}
			defer rt.CloseSpare()
			m, err := monitor.New(monitor.Config{Socket: socket, Runtime: runtimeAdapter{rt}, IdleTimeout: idle})
			if err != nil {
				return err
			}
			pidFile := filepath.Join(filepath.Dir(socket), "monitor.pid")
			os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
			defer os.Remove(pidFile)
			return m.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "/run/berth/monitor.sock", "socket the daemon reaches the monitor on")
	cmd.Flags().StringVar(&root, "root", "", "runtime state root (default: runtime/ beside the socket)")
	cmd.Flags().BoolVar(&spare, "spare-init", os.Getenv("BERTH_NO_SPARE_INIT") == "", "keep a container init started ahead of the next container (BERTH_NO_SPARE_INIT=1: off)")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 30*time.Second, "exit after this long with no container and no daemon (0: never)")
	return cmd
}

// runtimeAdapter gives the monitor berth's runtime. The monitor reaps the
// inits itself, so the runtime's handle on each is released at once.
type runtimeAdapter struct{ rt *ociruntime.Runtime }

func (a runtimeAdapter) Create(ctx context.Context, id, bundle string, stdio monitor.Stdio) (int, error) {
	p, err := a.rt.Create(ctx, id, ociruntime.CreateOpts{
		Bundle: bundle, ConsoleSocket: stdio.ConsoleSocket,
		Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr,
	})
	if err != nil {
		return 0, err
	}
	pid := p.Pid()
	p.Release()
	return pid, nil
}

// Start does not wait for the user's process to be executed: the daemon's
// start answers that much sooner, and the runtime's Kill waits for it.
func (a runtimeAdapter) Start(ctx context.Context, id string) error { return a.rt.StartNoWait(ctx, id) }

func (a runtimeAdapter) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return a.rt.Kill(ctx, id, sig, all)
}

func (a runtimeAdapter) Delete(ctx context.Context, id string, force bool) error {
	return a.rt.Delete(ctx, id, force)
}

func (a runtimeAdapter) Exec(ctx context.Context, id string, p *specs.Process, stdio monitor.Stdio) (int, error) {
	proc, err := a.rt.Exec(ctx, id, p, ociruntime.ExecOpts{ConsoleSocket: stdio.ConsoleSocket,
		Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr})
	if err != nil {
		return 0, err
	}
	pid := proc.Pid()
	proc.Release()
	return pid, nil
}
