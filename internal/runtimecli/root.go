// Package runtimecli is `berth runtime` (also `berth-runc`): a command line
// over internal/ociruntime that takes runc's global flags, verbs and exit
// codes, so tools that drive runc (containerd-shim, podman, the OCI
// runtime-tools suite) can drive berth. One file per verb.
package runtimecli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/ociruntime"
)

type globals struct {
	root          string
	logPath       string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
}

// runtime is the library over --root. Compiled seccomp filters are kept
// under <root>/@seccomp (a private directory; no container id has an "@"),
// since each invocation is a fresh process; for the same reason a create
// starts its init before it reads the spec (EagerInit).
func (g *globals) runtime() *ociruntime.Runtime {
	return &ociruntime.Runtime{Root: g.root, SeccompCache: filepath.Join(g.root, "@seccomp"), EagerInit: true}
}

// NewCommand returns the `runtime` command (named use, e.g. "runtime" or
// "berth-runc") with every verb.
func NewCommand(use string) *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           use,
		Short:         "Run OCI bundles (a runc-compatible runtime)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.systemdCgroup {
				return errdefs.NotImplemented(errors.New("--systemd-cgroup: systemd cgroup management is not supported by berth"))
			}
			return nil
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&g.root, "root", ociruntime.DefaultRoot, "root directory for storage of container state")
	f.StringVar(&g.logPath, "log", "", "log file (default stderr)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&g.debug, "debug", false, "debug logging")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd cgroups (not supported)")
	f.StringVar(&g.rootless, "rootless", "auto", "ignored; accepted for compatibility")
	f.StringVar(&g.criu, "criu", "criu", "ignored; accepted for compatibility")
	f.MarkHidden("criu")
	cmd.AddCommand(newCreate(g), newStart(g), newState(g), newKill(g), newDelete(g), newRun(g),
		newList(g), newPs(g), newFeatures(g), newSpec(g), newPause(g), newResume(g), newExec(g), newUpdate(g), newEvents(g))
	return cmd
}

// Main runs the runtime CLI with args (without the program name) and
// returns the process exit code, like runc: 0, 1 on error, or the
// container's exit status for run.
func Main(ctx context.Context, use string, args []string) int {
	cmd := NewCommand(use)
	cmd.SetArgs(args)
	var code exitCode
	ctx = context.WithValue(ctx, exitKey{}, &code)
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		reportError(cmd, err)
		return 1
	}
	return int(code)
}

type exitKey struct{}
type exitCode int

func setExit(ctx context.Context, c int) {
	if p, ok := ctx.Value(exitKey{}).(*exitCode); ok {
		*p = exitCode(c)
	}
}

// reportError prints err to stderr and, with --log, to the log file in the
// chosen format (containerd reads runc's JSON log for the error text).
func reportError(cmd *cobra.Command, err error) {
	fmt.Fprintln(os.Stderr, "berth runtime:", err)
	logPath, _ := cmd.Flags().GetString("log")
	if logPath == "" {
		return
	}
	format, _ := cmd.Flags().GetString("log-format")
	f, ferr := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	if format == "json" {
		b, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(), "time": time.Now().Format(time.RFC3339Nano)})
		f.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=error msg=%q\n", time.Now().Format(time.RFC3339Nano), err.Error())
}

// context returns the command's context with a logger per the global flags.
func (g *globals) context(cmd *cobra.Command) context.Context {
	ctx := cmd.Context()
	var w io.Writer = os.Stderr
	if g.logPath != "" {
		if f, err := os.OpenFile(g.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			w = f // closed at exit
		}
	}
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return log.WithLogger(ctx, slog.New(h))
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
