package runtimecli

import (
	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/ociruntime"
)

func newKill(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "Send a signal (default SIGTERM) to a container's init",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "SIGTERM"
			if len(args) == 2 {
				name = args[1]
			}
			sig, err := ociruntime.ParseSignal(name)
			if err != nil {
				return err
			}
			return g.runtime().Kill(g.context(cmd), args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process of the container")
	return cmd
}
