package runtimecli

import (
	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/ociruntime"
)

func newFeatures(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "Print what this runtime supports, as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printJSON(ociruntime.Features())
		},
	}
}
