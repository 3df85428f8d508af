package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/runtimecli"
)

// runtimeMain is `berth runtime ...`, or berth invoked as berth-runc:
// dispatched before the CLI's command tree is built, since runc-driving
// tools exec it for every operation. It returns the exit code.
func runtimeMain() (code int, ok bool) {
	if filepath.Base(os.Args[0]) == "berth-runc" {
		return runtimecli.Main(context.Background(), "berth-runc", os.Args[1:]), true
	}
	if len(os.Args) > 1 && os.Args[1] == "runtime" {
		return runtimecli.Main(context.Background(), "berth runtime", os.Args[2:]), true
	}
	return 0, false
}

// newRuntimeCommand lists `runtime` in the CLI's help; runtimeMain serves it.
func newRuntimeCommand() *cobra.Command {
	cmd := runtimecli.NewCommand("runtime")
	return cmd
}
