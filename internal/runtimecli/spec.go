package runtimecli

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/ociruntime"
)

func newSpec(g *globals) *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec [flags]",
		Short: "Write a default config.json into the bundle directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return errdefs.Conflictf("file %s exists: remove it first", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			b, err := json.MarshalIndent(ociruntime.DefaultSpec(rootless), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for a rootless container")
	return cmd
}
