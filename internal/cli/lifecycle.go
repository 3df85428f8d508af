package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
)

// parseFilters turns repeated --filter name=value flags into the API's map.
func parseFilters(flags []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, errdefs.Invalidf("bad format of filter %q (expected name=value)", f)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

func newRestartCommand(c *CLI) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			return c.each(args, func(id string) error { return cl.ContainerRestart(cmd.Context(), id, t, signal) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newRenameCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return cl.ContainerRename(cmd.Context(), args[0], args[1])
		},
	}
}

func newAttachCommand(c *CLI) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			info, err := cl.ContainerInspect(ctx, args[0])
			if err != nil {
				return err
			}
			if !info.State.Running {
				return errdefs.Conflictf("you cannot attach to a stopped container, start it first")
			}
			stdin := !noStdin && info.Config.OpenStdin
			conn, err := cl.ContainerAttach(ctx, info.ID, client.AttachOptions{Stdin: stdin, Stdout: true, Stderr: true})
			if err != nil {
				return err
			}
			defer conn.Close()
			waitC, waitErr := cl.ContainerWait(ctx, info.ID, "not-running")
			tty := info.Config.Tty
			if tty && stdin && term.IsTerminal(int(os.Stdin.Fd())) {
				if state, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					defer term.Restore(int(os.Stdin.Fd()), state)
				}
			}
			if tty && term.IsTerminal(int(os.Stdout.Fd())) {
				c.resizeWithTerminal(ctx, cl, info.ID)
			}
			if stdin {
				go func() {
					io.Copy(conn.Conn, os.Stdin)
					conn.CloseWrite()
				}()
			}
			if tty {
				io.Copy(c.out, conn.Reader)
			} else {
				stdcopy.StdCopy(c.out, c.errOut, conn.Reader)
			}
			select {
			case res := <-waitC:
				if res.StatusCode != 0 {
					return StatusError{Code: int(res.StatusCode)}
				}
				return nil
			case err := <-waitErr:
				return err
			case <-time.After(2 * time.Second):
				return nil // detached while it keeps running
			}
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	return cmd
}

func newEventsCommand(c *CLI) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			opts := client.EventsOptions{Filters: f}
			if opts.Since, err = timeArg(since); err != nil {
				return err
			}
			if opts.Until, err = timeArg(until); err != nil {
				return err
			}
			msgs, errs := cl.Events(cmd.Context(), opts)
			for m := range msgs {
				if format != "" {
					if err := c.template(format, m); err != nil {
						return err
					}
					continue
				}
				attrs := make([]string, 0, len(m.Actor.Attributes))
				for k, v := range m.Actor.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				slices.Sort(attrs)
				fmt.Fprintf(c.out, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00"),
					m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
			}
			select {
			case err := <-errs:
				return err
			default:
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	cmd.Flags().StringVar(&format, "format", "", "format the output using the given Go template")
	stringArrayVarP(cmd.Flags(), &filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

// timeArg turns a --since/--until value into what the API takes: a
// duration ("10m") becomes Unix seconds that long ago; anything else goes
// as given (Unix seconds or RFC 3339, which the daemon parses).
func timeArg(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return fmt.Sprint(time.Now().Add(-d).Unix()), nil
	}
	return v, nil
}

func newInfoCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			info, err := cl.Info(cmd.Context())
			if err != nil {
				return err
			}
			if format != "" {
				return c.template(format, info)
			}
			fmt.Fprintf(c.out, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n",
				info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images)
			fmt.Fprintf(c.out, " Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n",
				info.ServerVersion, info.Driver, info.LoggingDriver, info.CgroupDriver, info.CgroupVersion)
			fmt.Fprintf(c.out, " Kernel Version: %s\n Operating System: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n ID: %s\n Docker Root Dir: %s\n",
				info.KernelVersion, info.OperatingSystem, info.Architecture, info.NCPU, units.BytesSize(float64(info.MemTotal)), info.Name, info.ID, info.DockerRootDir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	return cmd
}

func newContainerPruneCommand(c *CLI) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				return errdefs.Invalidf("container prune removes all stopped containers: confirm with --force (-f)")
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			rep, err := cl.ContainerPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			if len(rep.ContainersDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Containers:")
				for _, id := range rep.ContainersDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	stringArrayVar(cmd.Flags(), &filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	return cmd
}

// newContainerCommand is `berth container ...`: docker's management form of
// the container verbs (`container ls` is `ps`).
func newContainerCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: cobra.NoArgs}
	ls := newPsCommand(c)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	cmd.AddCommand(newCreateCommand(c), newRunCommand(c), newStartCommand(c), newStopCommand(c),
		newKillCommand(c), newRmCommand(c), newWaitCommand(c), newLogsCommand(c), newInspectCommand(c),
		ls, newRestartCommand(c), newRenameCommand(c), newAttachCommand(c), newContainerPruneCommand(c))
	return cmd
}
