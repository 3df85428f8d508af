package runtimecli

import "github.com/spf13/cobra"

func newPause(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause <container-id>",
		Short: "Freeze every process of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runtime().Pause(g.context(cmd), args[0])
		},
	}
}

func newResume(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume <container-id>",
		Short: "Thaw a paused container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runtime().Resume(g.context(cmd), args[0])
		},
	}
}
