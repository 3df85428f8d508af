package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
)

func newStopCommand(c *CLI) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
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
			return c.each(args, func(id string) error { return ignoreNotModified(cl.ContainerStop(cmd.Context(), id, t, signal)) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newKillCommand(c *CLI) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(id string) error { return cl.ContainerKill(cmd.Context(), id, signal) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newRmCommand(c *CLI) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(id string) error { return cl.ContainerRemove(cmd.Context(), id, force, volumes) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var failed bool
			for _, id := range args {
				res, errs := cl.ContainerWait(cmd.Context(), id, "not-running")
				select {
				case r := <-res:
					fmt.Fprintln(c.out, r.StatusCode)
				case err := <-errs:
					fmt.Fprintln(c.errOut, "Error response from daemon:", err)
					failed = true
				}
			}
			if failed {
				return StatusError{Code: 1}
			}
			return nil
		},
	}
}

func newLogsCommand(c *CLI) *cobra.Command {
	var opts client.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			info, err := cl.ContainerInspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			opts.Stdout, opts.Stderr = true, true
			rc, err := cl.ContainerLogs(cmd.Context(), info.ID, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Config != nil && info.Config.Tty {
				_, err = io.Copy(c.out, rc)
			} else {
				_, err = stdcopy.StdCopy(c.out, c.errOut, rc)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVar(&opts.Since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
	f.StringVar(&opts.Until, "until", "", "show logs before a timestamp or relative")
	f.StringVarP(&opts.Tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		for _, p := range []*string{&opts.Since, &opts.Until} {
			if *p == "" {
				continue
			}
			if d, err := time.ParseDuration(*p); err == nil {
				*p = fmt.Sprint(time.Now().Add(-d).Unix())
			}
		}
		return nil
	}
	return cmd
}

func newInspectCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.inspectEach(args, format, func(ref string) (any, error) { return cl.ContainerInspect(cmd.Context(), ref) })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	return cmd
}

func newPsCommand(c *CLI) *cobra.Command {
	var all, quiet, noTrunc, latest bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"list", "ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			opts := client.ContainerListOptions{All: all, Limit: last, Filters: f}
			if latest {
				opts.Limit = 1
			}
			list, err := cl.ContainerList(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return c.buffered(func() error { return c.printContainers(list, quiet, noTrunc, format) })
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	stringArrayVarP(f, &filters, "filter", "f", nil, "filter output based on conditions provided")
	f.StringVar(&format, "format", "", "format output using a custom template")
	return cmd
}

// printContainers is ps's output: IDs, a --format per container, or the table.
func (c *CLI) printContainers(list []container.Summary, quiet, noTrunc bool, format string) error {
	if quiet {
		for _, s := range list {
			id := s.ID
			if !noTrunc {
				id = id[:12]
			}
			fmt.Fprintln(c.out, id)
		}
		return nil
	}
	if format != "" && format != "table" {
		return templateEach(c, format, list)
	}
	tw := tabwriter.NewWriter(c.out, 0, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	now := time.Now()
	for _, s := range list {
		id, command := s.ID, s.Command
		if !noTrunc {
			id = id[:12]
			if len(command) > 20 {
				command = command[:19] + "…"
			}
		}
		created := units.HumanDuration(now.Sub(time.Unix(s.Created, 0))) + " ago"
		names := strings.TrimPrefix(strings.Join(s.Names, ","), "/")
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", id, s.Image, command, created, s.Status, "", names)
	}
	return tw.Flush()
}

func ignoreNotModified(err error) error {
	if err != nil && errors.Is(err, errdefs.ErrNotModified) {
		return nil
	}
	return err
}

// inspectEach prints what get returns for each name: formatted with
// format, or as one indented JSON array; unknown names are reported and
// make the command fail, after the others are printed.
func (c *CLI) inspectEach(names []string, format string, get func(string) (any, error)) error {
	out := []any{}
	var failed bool
	for _, n := range names {
		v, err := get(n)
		if err != nil {
			fmt.Fprintln(c.errOut, "Error: No such object:", n)
			failed = true
			continue
		}
		out = append(out, v)
	}
	if format != "" {
		if err := templateEach(c, format, out); err != nil {
			return err
		}
	} else {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "    ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if failed {
		return StatusError{Code: 1}
	}
	return nil
}
