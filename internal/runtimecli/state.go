package runtimecli

import "github.com/spf13/cobra"

func newState(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "Print a container's state as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.runtime().State(g.context(cmd), args[0])
			if err != nil {
				return err
			}
			return printJSON(st)
		},
	}
}
