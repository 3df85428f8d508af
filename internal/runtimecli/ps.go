package runtimecli

import (
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
)

func newPs(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "List a container's processes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pids, err := g.runtime().Ps(g.context(cmd), args[0])
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return printJSON(pids)
			case "table":
				opts := args[1:]
				if len(opts) == 0 {
					opts = []string{"-f"}
				}
				var list []string
				for _, p := range pids {
					list = append(list, strconv.Itoa(p))
				}
				if len(list) == 0 {
					return nil
				}
				ps := exec.Command("ps", append(opts, "-p", strings.Join(list, ","))...)
				ps.Stdout, ps.Stderr = os.Stdout, os.Stderr
				return ps.Run()
			}
			return errdefs.Invalidf("--format: %q is not table or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
