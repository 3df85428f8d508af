package cli

import (
	"context"
	"io"
	"os"
	"os/signal"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth/berth/client"
)

type execOptions struct {
	interactive, tty, detach, privileged bool
	env, envFiles                        []string
	user, workdir, detachKeys            string
}

func newExecCommand(c *CLI) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var env []string
			for _, path := range o.envFiles {
				e, err := readEnvFile(path)
				if err != nil {
					return err
				}
				env = append(env, e...)
			}
			env = append(env, o.env...) // -e wins over --env-file
			req := container.ExecCreateRequest{User: o.user, Privileged: o.privileged, Tty: o.tty,
				AttachStdin: o.interactive && !o.detach, AttachStdout: !o.detach, AttachStderr: !o.detach,
				DetachKeys: o.detachKeys, Env: env, WorkingDir: o.workdir, Cmd: args[1:]}
			if o.tty && term.IsTerminal(int(os.Stdout.Fd())) {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					req.ConsoleSize = &[2]uint{uint(h), uint(w)}
				}
			}
			id, err := cl.ExecCreate(ctx, args[0], req)
			if err != nil {
				return err
			}
			if o.detach {
				return cl.ExecStartDetached(ctx, id)
			}
			return c.execAttached(ctx, cl, id, o)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after the container are the command's
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&o.detach, "detach", "d", false, "run the command in the background")
	f.BoolVar(&o.privileged, "privileged", false, "give extended privileges to the command")
	stringArrayVarP(f, &o.env, "env", "e", nil, "set environment variables")
	stringArrayVar(f, &o.envFiles, "env-file", nil, "read in a file of environment variables")
	f.StringVarP(&o.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVar(&o.detachKeys, "detach-keys", "", "override the key sequence for detaching (accepted, not used)")
	return cmd
}

// execAttached runs an exec attached to our stdio and exits with its code.
func (c *CLI) execAttached(ctx context.Context, cl *client.Client, id string, o execOptions) error {
	restore := func() {}
	if o.tty && o.interactive && term.IsTerminal(int(os.Stdin.Fd())) {
		state, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
		}
	}
	defer restore()
	conn, err := cl.ExecAttach(ctx, id, container.ExecStartRequest{Tty: o.tty})
	if err != nil {
		return err
	}
	defer conn.Close()
	if o.tty && term.IsTerminal(int(os.Stdout.Fd())) {
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, unix.SIGWINCH)
		defer signal.Stop(sigc)
		resize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				cl.ExecResize(ctx, id, uint16(h), uint16(w))
			}
		}
		resize()
		go func() {
			for range sigc {
				resize()
			}
		}()
	}
	if o.interactive {
		go func() {
			io.Copy(conn.Conn, os.Stdin)
			conn.CloseWrite()
		}()
	}
	if o.tty {
		_, err = io.Copy(c.out, conn.Reader)
	} else {
		_, err = stdcopy.StdCopy(c.out, c.errOut, conn.Reader)
	}
	restore()
	if err != nil {
		return err
	}
	info, err := cl.ExecInspect(ctx, id)
	if err != nil {
		return err
	}
	if info.ExitCode != nil && *info.ExitCode != 0 {
		return StatusError{Code: *info.ExitCode}
	}
	return nil
}
