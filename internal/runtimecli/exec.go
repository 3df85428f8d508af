package runtimecli

import (
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/ociruntime"
)

type execFlags struct {
	process, pidFile, consoleSocket, cwd, user string
	env, caps, additionalGids                  []string
	detach, tty, noNewPrivs                    bool
	preserveFDs                                int
	apparmor, processLabel, cgroup             string
	ignorePaused                               bool
}

func newExec(g *globals) *cobra.Command {
	var f execFlags
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> [command [args...]]",
		Short: "Run a process in a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := g.context(cmd)
			rt := g.runtime()
			p, err := f.buildProcess(cmd, rt, args)
			if err != nil {
				return err
			}
			o := ociruntime.ExecOpts{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
				ConsoleSocket: f.consoleSocket, PidFile: f.pidFile}
			var sigs chan os.Signal
			if !f.detach {
				// Caught before the process exists, so none is lost.
				sigs = make(chan os.Signal, 16)
				signal.Notify(sigs)
				defer signal.Stop(sigs)
			}
			proc, err := rt.Exec(ctx, args[0], p, o)
			if err != nil {
				return err
			}
			if f.detach {
				proc.Release()
				return nil
			}
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					select {
					case <-done:
						return
					case s := <-sigs:
						if ss, ok := s.(unix.Signal); ok && ss != unix.SIGCHLD && ss != unix.SIGURG {
							unix.Kill(proc.Pid(), ss)
						}
					}
				}
			}()
			code, err := proc.Wait()
			if err != nil && code < 0 {
				return err
			}
			setExit(cmd.Context(), code)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after the command are the command's
	fl.StringVarP(&f.process, "process", "p", "", "path to a process.json (runtime-spec process) to run")
	fl.BoolVarP(&f.detach, "detach", "d", false, "do not wait for the process")
	fl.StringVar(&f.pidFile, "pid-file", "", "file to write the process's pid to")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY (needs --console-socket)")
	fl.StringVar(&f.cwd, "cwd", "", "working directory in the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	fl.StringVarP(&f.user, "user", "u", "", "UID[:GID] to run as")
	fl.StringArrayVarP(&f.additionalGids, "additional-gids", "g", nil, "additional gids")
	fl.StringArrayVarP(&f.caps, "cap", "c", nil, "add a capability")
	fl.BoolVar(&f.noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fl.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio (not supported for exec)")
	fl.StringVar(&f.apparmor, "apparmor", "", "AppArmor profile (not supported)")
	fl.StringVar(&f.processLabel, "process-label", "", "SELinux label (not supported)")
	fl.StringVar(&f.cgroup, "cgroup", "", "sub-cgroup to run in (not supported)")
	fl.BoolVar(&f.ignorePaused, "ignore-paused", false, "ignored; accepted for compatibility")
	return cmd
}

// buildProcess is the process to run: --process's, or the container's
// with the command and flags applied (as runc does).
func (f *execFlags) buildProcess(cmd *cobra.Command, rt *ociruntime.Runtime, args []string) (*specs.Process, error) {
	switch {
	case f.preserveFDs != 0:
		return nil, errdefs.NotImplemented(errors.New("--preserve-fds: not supported by berth's exec"))
	case f.apparmor != "":
		return nil, errdefs.NotImplemented(errors.New("--apparmor: AppArmor is not supported by berth"))
	case f.processLabel != "":
		return nil, errdefs.NotImplemented(errors.New("--process-label: SELinux is not supported by berth"))
	case f.cgroup != "":
		return nil, errdefs.NotImplemented(errors.New("--cgroup: exec into a sub-cgroup is not supported by berth"))
	}
	if f.process != "" {
		b, err := os.ReadFile(f.process)
		if err != nil {
			return nil, errdefs.Invalidf("--process: %v", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, errdefs.Invalidf("--process %s: %v", f.process, err)
		}
		return &p, nil
	}
	if len(args) < 2 {
		return nil, errdefs.Invalidf("exec: a command (or --process) is required")
	}
	p, err := rt.ContainerProcess(cmd.Context(), args[0])
	if err != nil {
		return nil, err
	}
	p.Args = args[1:]
	p.Terminal = f.tty
	p.ConsoleSize = nil
	if f.cwd != "" {
		p.Cwd = f.cwd
	}
	p.Env = append(p.Env, f.env...)
	if f.noNewPrivs {
		p.NoNewPrivileges = true
	}
	if f.user != "" {
		uid, gid, hasGid := strings.Cut(f.user, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, errdefs.Invalidf("--user %q: want UID[:GID] numbers", f.user)
		}
		p.User.UID = uint32(u)
		if hasGid {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, errdefs.Invalidf("--user %q: want UID[:GID] numbers", f.user)
			}
			p.User.GID = uint32(g)
		}
	}
	for _, s := range f.additionalGids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, errdefs.Invalidf("--additional-gids %q: want a number", s)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if len(f.caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		c := p.Capabilities
		for _, name := range f.caps {
			c.Bounding = append(c.Bounding, name)
			c.Effective = append(c.Effective, name)
			c.Permitted = append(c.Permitted, name)
			c.Inheritable = append(c.Inheritable, name)
			c.Ambient = append(c.Ambient, name)
		}
	}
	return p, nil
}
