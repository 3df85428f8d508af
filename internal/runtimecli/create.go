package runtimecli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/ociruntime"
)

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (f *createFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", ".", "path to the root of the bundle directory")
	fl.StringVar(&f.pidFile, "pid-file", "", "file to write the container's init pid to")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot_root (for ramfs roots)")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring")
	fl.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio (3, 4, ...) to the container")
}

func (f *createFlags) opts() ociruntime.CreateOpts {
	o := ociruntime.CreateOpts{Bundle: f.bundle, PidFile: f.pidFile, ConsoleSocket: f.consoleSocket,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for i := 0; i < f.preserveFDs; i++ {
		o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	return o
}

func newCreate(g *globals) *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "Create a container; its process waits for start",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.runtime().Create(g.context(cmd), args[0], f.opts())
			if err != nil {
				return err
			}
			p.Release()
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
