package runtimecli

import "github.com/spf13/cobra"

func newDelete(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete [flags] <container-id>...",
		Aliases: []string{"rm"},
		Short:   "Delete a stopped container (and its cgroup and state)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var first error
			for _, id := range args {
				if err := g.runtime().Delete(g.context(cmd), id, force); err != nil && first == nil {
					first = err
				}
			}
			return first
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}
