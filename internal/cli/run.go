package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
)

// containerOptions are the flags create and run share.
type containerOptions struct {
	name        string
	env         []string
	labels      []string
	workdir     string
	user        string
	entrypoint  string
	interactive bool
	tty         bool
	autoRemove  bool
	restart     string
	logDriver   string
	logOpts     []string
	hostname    string
	stopSignal  string
	stopTimeout int
	host        hostOptions   // isolation, storage and resources (hostflags.go)
	health      healthOptions // health.go
	net         netOptions    // network.go
}

func (o *containerOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.name, "name", "", "assign a name to the container")
	stringArrayVarP(f, &o.env, "env", "e", nil, "set environment variables")
	stringArrayVarP(f, &o.labels, "label", "l", nil, "set metadata on a container")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVar(&o.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVar(&o.autoRemove, "rm", false, "automatically remove the container when it exits")
	f.StringVar(&o.restart, "restart", "no", "restart policy to apply when a container exits")
	f.StringVar(&o.logDriver, "log-driver", "", "logging driver for the container")
	stringArrayVar(f, &o.logOpts, "log-opt", nil, "log driver options")
	f.StringVarP(&o.hostname, "hostname", "h", "", "container host name")
	f.StringVar(&o.stopSignal, "stop-signal", "", "signal to stop the container")
	f.IntVar(&o.stopTimeout, "stop-timeout", -1, "timeout (in seconds) to stop a container")
	o.host.addFlags(f)
	o.health.addFlags(f)
	o.net.addFlags(f)
	f.SetInterspersed(false) // `run IMAGE CMD -x`: flags after the image belong to CMD
}

// request turns the flags and the IMAGE [COMMAND [ARG...]] arguments into
// a create request, rejecting bad values with the flag's name.
func (o *containerOptions) request(cmd *cobra.Command, args []string) (container.CreateRequest, error) {
	cfg := &container.Config{
		Image: args[0], Cmd: args[1:], Env: o.env, WorkingDir: o.workdir, User: o.user,
		Tty: o.tty, OpenStdin: o.interactive, AttachStdin: o.interactive, Hostname: o.hostname,
		StopSignal: o.stopSignal, Labels: map[string]string{},
	}
	if len(cfg.Cmd) == 0 {
		cfg.Cmd = nil
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{o.entrypoint}
	}
	if cmd.Flags().Changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	if err := o.health.apply(cmd, cfg); err != nil {
		return container.CreateRequest{}, err
	}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{AutoRemove: o.autoRemove, LogConfig: container.LogConfig{Type: o.logDriver, Config: map[string]string{}}}
	name, count, _ := strings.Cut(o.restart, ":")
	hc.RestartPolicy.Name = container.RestartPolicyMode(name)
	if count != "" {
		if _, err := fmt.Sscanf(count, "%d", &hc.RestartPolicy.MaximumRetryCount); err != nil {
			return container.CreateRequest{}, errdefs.Invalidf("invalid --restart %q: the retry count must be a number", o.restart)
		}
	}
	for _, opt := range o.logOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return container.CreateRequest{}, errdefs.Invalidf("invalid --log-opt %q: want key=value", opt)
		}
		hc.LogConfig.Config[k] = v
	}
	if err := o.host.apply(cmd.Flags(), cfg, hc); err != nil {
		return container.CreateRequest{}, err
	}
	req := container.CreateRequest{Config: cfg, HostConfig: hc}
	if err := o.net.apply(&req); err != nil {
		return container.CreateRequest{}, err
	}
	return req, nil
}

func newCreateCommand(c *CLI) *cobra.Command {
	var o containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			req, err := o.request(cmd, args)
			if err != nil {
				return err
			}
			resp, err := cl.ContainerCreate(cmd.Context(), o.name, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, resp.ID)
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func newRunCommand(c *CLI) *cobra.Command {
	var o containerOptions
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			req, err := o.request(cmd, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !detach {
				req.Config.AttachStdout, req.Config.AttachStderr = true, true
			}
			created, err := cl.ContainerCreate(ctx, o.name, req)
			if err != nil {
				return err
			}
			if detach {
				if err := cl.ContainerStart(ctx, created.ID); err != nil {
					return startError(err)
				}
				fmt.Fprintln(c.out, created.ID)
				return nil
			}
			return c.runAttached(ctx, cl, created.ID, o)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	return cmd
}

// runAttached is `run` without -d: attach, wait, start, stream, and exit
// with the container's code.
func (c *CLI) runAttached(ctx context.Context, cl *client.Client, id string, o containerOptions) error {
	conn, err := cl.ContainerAttach(ctx, id, client.AttachOptions{Stdin: o.interactive, Stdout: true, Stderr: true})
	if err != nil {
		return err
	}
	defer conn.Close()
	condition := "next-exit"
	if o.autoRemove {
		condition = "removed"
	}
	waitC, waitErr := cl.ContainerWait(ctx, id, condition)
	select {
	case err := <-waitErr:
		return err
	default:
	}
	restore := func() {}
	if o.tty && o.interactive && term.IsTerminal(int(os.Stdin.Fd())) {
		state, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), state) }
		}
	}
	defer restore()
	if err := cl.ContainerStart(ctx, id); err != nil {
		restore()
		return startError(err)
	}
	if o.tty && term.IsTerminal(int(os.Stdout.Fd())) {
		c.resizeWithTerminal(ctx, cl, id)
	}
	if o.interactive {
		go func() {
			io.Copy(conn.Conn, os.Stdin)
			conn.CloseWrite()
		}()
	}
	outputDone := make(chan error, 1)
	go func() {
		var err error
		if o.tty {
			_, err = io.Copy(c.out, conn.Reader)
		} else {
			_, err = stdcopy.StdCopy(c.out, c.errOut, conn.Reader)
		}
		outputDone <- err
	}()
	<-outputDone
	select {
	case res := <-waitC:
		restore()
		if res.Error != nil && res.Error.Message != "" {
			return StatusError{Code: 125, Message: res.Error.Message}
		}
		if res.StatusCode != 0 {
			return StatusError{Code: int(res.StatusCode)}
		}
		return nil
	case err := <-waitErr:
		return err
	}
}

// startError is how `docker run` ends when the container cannot start:
// 127 when its command is not found, 126 when it cannot be executed, 125
// otherwise.
func startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return StatusError{Code: 127, Message: msg}
	case strings.Contains(msg, "permission denied"):
		return StatusError{Code: 126, Message: msg}
	}
	return StatusError{Code: 125, Message: msg}
}

// resizeWithTerminal keeps the container's TTY the size of ours.
func (c *CLI) resizeWithTerminal(ctx context.Context, cl *client.Client, id string) {
	resize := func() {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			cl.ContainerResize(ctx, id, uint16(h), uint16(w))
		}
	}
	resize()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGWINCH)
	go func() {
		defer signal.Stop(sigc)
		for {
			select {
			case <-sigc:
				resize()
			case <-ctx.Done():
				return
			}
		}
	}()
}

func newStartCommand(c *CLI) *cobra.Command {
	var attach bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			if attach {
				if len(args) != 1 {
					return errdefs.Invalidf("you cannot start and attach multiple containers at once")
				}
				info, err := cl.ContainerInspect(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return c.runAttached(cmd.Context(), cl, info.ID, containerOptions{tty: info.Config.Tty})
			}
			return c.each(args, func(id string) error {
				err := cl.ContainerStart(cmd.Context(), id)
				if errors.Is(err, errdefs.ErrNotModified) {
					err = nil
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	return cmd
}

// each runs fn for every argument, printing the argument on success and
// the error otherwise, as docker does for multi-container verbs; the
// command fails if any failed.
func (c *CLI) each(args []string, fn func(string) error) error {
	var failed []string
	for _, a := range args {
		if err := fn(a); err != nil {
			fmt.Fprintln(c.errOut, "Error response from daemon:", err)
			failed = append(failed, a)
			continue
		}
		fmt.Fprintln(c.out, a)
	}
	if len(failed) > 0 {
		return StatusError{Code: 1}
	}
	return nil
}
