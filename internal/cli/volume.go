package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
)

func newVolumeCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes", Args: cobra.NoArgs}
	cmd.AddCommand(newVolumeCreateCommand(c), newVolumeLsCommand(c), newVolumeInspectCommand(c), newVolumeRmCommand(c), newVolumePruneCommand(c))
	return cmd
}

// keyValues turns repeated key=value flags into a map, naming the flag in
// the error.
func keyValues(flag string, list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok && flag != "label" {
			return nil, errdefs.Invalidf("invalid --%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// filterFlags turns --filter key=value flags into API filters.
func filterFlags(list []string) (map[string][]string, error) {
	f := map[string][]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, errdefs.Invalidf("bad format of filter %q (expected name=value)", kv)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func newVolumeCreateCommand(c *CLI) *cobra.Command {
	var driver string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			req := volume.CreateRequest{Driver: driver}
			if len(args) == 1 {
				req.Name = args[0]
			}
			if req.DriverOpts, err = keyValues("opt", opts); err != nil {
				return err
			}
			if req.Labels, err = keyValues("label", labels); err != nil {
				return err
			}
			v, err := cl.VolumeCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, v.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver name")
	stringArrayVarP(cmd.Flags(), &opts, "opt", "o", nil, "driver specific options")
	stringArrayVar(cmd.Flags(), &labels, "label", nil, "set metadata for a volume")
	return cmd
}

func newVolumeLsCommand(c *CLI) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := filterFlags(filters)
			if err != nil {
				return err
			}
			resp, err := cl.VolumeList(cmd.Context(), f)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, v := range resp.Volumes {
					fmt.Fprintln(c.out, v.Name)
				}
			case format != "":
				if err := templateEach(c, format, resp.Volumes); err != nil {
					return err
				}
			default:
				tw := tabwriter.NewWriter(c.out, 0, 1, 5, ' ', 0)
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
				for _, v := range resp.Volumes {
					fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	stringArrayVarP(cmd.Flags(), &filters, "filter", "f", nil, "provide filter values (e.g. 'dangling=true')")
	cmd.Flags().StringVar(&format, "format", "", "format output using a custom template")
	return cmd
}

func newVolumeInspectCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.inspectEach(args, format, func(name string) (any, error) { return cl.VolumeInspect(cmd.Context(), name) })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a custom template")
	return cmd
}

func newVolumeRmCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(name string) error { return cl.VolumeRemove(cmd.Context(), name, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(c *CLI) *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			if !force {
				return errdefs.Invalidf("prune removes volumes for good: confirm with --force")
			}
			f, err := filterFlags(filters)
			if err != nil {
				return err
			}
			if all {
				f["all"] = []string{"true"}
			}
			r, err := cl.VolumePrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			if len(r.VolumesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Volumes:")
				for _, n := range r.VolumesDeleted {
					fmt.Fprintln(c.out, n)
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintln(c.out, "Total reclaimed space:", units.HumanSize(float64(r.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	stringArrayVar(cmd.Flags(), &filters, "filter", nil, "provide filter values (e.g. 'label=<label>')")
	return cmd
}
