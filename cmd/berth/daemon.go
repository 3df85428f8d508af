package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/engine"
	"github.com/berth/berth/internal/log"
)

// logLevels are dockerd's --log-level names; fatal logs errors only.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "fatal": slog.LevelError}

// newDaemonCommand is `berth daemon`, taking dockerd's flags for where
// things live.
func newDaemonCommand() *cobra.Command {
	cfg := engine.DefaultConfig()
	var (
		debug               bool
		logFormat, logLevel string
		configFile          string
	)
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run the berth engine: the Docker Engine API on a unix socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigFile(cmd.Flags(), configFile, cmd.Flags().Changed("config-file")); err != nil {
				return err
			}
			level, ok := logLevels[logLevel]
			if !ok {
				return fmt.Errorf("log-level %q: want debug, info, warn, error or fatal", logLevel)
			}
			if debug {
				level = slog.LevelDebug
			}
			opts := &slog.HandlerOptions{Level: level}
			var h slog.Handler
			switch logFormat {
			case "text":
				h = slog.NewTextHandler(os.Stderr, opts)
			case "json":
				h = slog.NewJSONHandler(os.Stderr, opts)
			default:
				return fmt.Errorf("log-format %q: want text or json", logFormat)
			}
			ctx := log.WithLogger(cmd.Context(), slog.New(h))
			e, err := engine.New(ctx, cfg)
			if err != nil {
				return err
			}
			return e.Serve(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataRoot, "data-root", cfg.DataRoot, "root directory of persistent berth state")
	f.StringVar(&cfg.ExecRoot, "exec-root", cfg.ExecRoot, "root directory of runtime state")
	f.StringSliceVarP(&cfg.Hosts, "host", "H", cfg.Hosts, "daemon socket(s) to listen on")
	f.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry (host:port) to reach over plain HTTP")
	f.StringArrayVar(&cfg.RegistryMirrors, "registry-mirror", nil, "preferred Docker Hub mirror (URL); repeat for more, tried in order")
	f.BoolVarP(&debug, "debug", "D", false, "enable debug logging")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVarP(&logLevel, "log-level", "l", "info", "log level: debug, info, warn, error or fatal")
	f.StringVar(&configFile, "config-file", defaultConfigFile, "daemon configuration file (dockerd's daemon.json keys)")
	f.StringVar(&cfg.HostNetNS, "host-netns", "", "network namespace (a path) to put bridges, rules and DNS in instead of the daemon's own (tests)")
	f.MarkHidden("host-netns")
	return cmd
}
