package runtimecli

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/ociruntime"
)

func newList(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "List the containers under --root",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := g.runtime().List(g.context(cmd))
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range list {
					fmt.Println(s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				if list == nil {
					list = []*ociruntime.State{}
				}
				return printJSON(list)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, s := range list {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			}
			return errdefs.Invalidf("--format: %q is not table or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}
