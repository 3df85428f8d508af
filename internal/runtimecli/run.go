package runtimecli

import (
	"github.com/spf13/cobra"
)

func newRun(g *globals) *cobra.Command {
	var f createFlags
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "Create and start a container; without --detach, wait for it and delete it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := g.context(cmd)
			rt := g.runtime()
			if detach {
				p, err := rt.Create(ctx, args[0], f.opts())
				if err != nil {
					return err
				}
				p.Release()
				return rt.Start(ctx, args[0])
			}
			code, err := rt.Run(ctx, args[0], f.opts(), true)
			if err != nil {
				return err
			}
			setExit(cmd.Context(), code)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the container")
	return cmd
}
