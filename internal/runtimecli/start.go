package runtimecli

import "github.com/spf13/cobra"

func newStart(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "Start the process of a created container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runtime().Start(g.context(cmd), args[0])
		},
	}
}
