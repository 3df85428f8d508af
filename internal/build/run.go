package build

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	ctypes "github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/logs"
)

// runStep is RUN: a container from the current image runs the command; its
// changes become the step's layer. The container goes away whatever happens.
func (s *buildState) runStep(ctx context.Context, n *parser.Node, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return errdefs.NotImplemented(fmt.Errorf("RUN --%s needs BuildKit; berth's builder runs the legacy builder's RUN", c.FlagsUsed[0]))
	}
	if len(c.Files) > 0 {
		return errdefs.NotImplemented(fmt.Errorf("RUN with a heredoc needs BuildKit"))
	}
	argv := s.cmdLine(c.ShellDependantCmdLine, s.config)
	cfg := s.config
	// The build args in scope are the command's environment, not the image's.
	var argEnv []string
	for _, k := range s.argKeys {
		if !hasEnv(cfg.Env, k) {
			argEnv = append(argEnv, k+"="+s.args[k])
		}
	}
	if s.imageID == "" {
		return errdefs.Invalidf("RUN on scratch: there is no file system to run %q in", strings.Join(argv, " "))
	}
	createdBy := strings.Join(argv, " ")
	if len(argEnv) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(argEnv), strings.Join(argEnv, " "), createdBy)
	}
	network := s.opts.Network
	if network == "default" {
		network = ""
	}
	return s.cached(ctx, n, cfg, "", func() (_ string, err error) {
		b := s.b
		cc := &ctypes.Config{
			Image: s.imageID, Cmd: argv, Entrypoint: []string{""},
			Env: append(append([]string(nil), cfg.Env...), argEnv...), WorkingDir: cfg.WorkingDir, User: cfg.User,
			Labels: map[string]string{buildLabel: "intermediate"},
		}
		ctr, err := b.containers.Create(ctx, container.CreateRequest{Config: cc, HostConfig: &ctypes.HostConfig{NetworkMode: ctypes.NetworkMode(network)}})
		if err != nil {
			return "", err
		}
		s.printf(" ---> Running in %s\n", container.ShortID(ctr.ID))
		defer func() {
			rctx := context.WithoutCancel(ctx)
			if rerr := b.containers.Remove(rctx, ctr.ID, container.RemoveOptions{Force: true}); rerr != nil {
				log.From(ctx).Warn("remove build container", "container", container.ShortID(ctr.ID), "err", rerr)
				if err == nil {
					err = rerr
				}
			}
			if err == nil {
				s.printf("Removing intermediate container %s\n", container.ShortID(ctr.ID))
			}
		}()
		waitc, err := b.containers.Wait(ctx, ctr.ID, container.WaitNextExit)
		if err != nil {
			return "", err
		}
		if err := b.containers.Start(ctx, ctr.ID); err != nil {
			return "", err
		}
		done := make(chan struct{})
		logDone := make(chan error, 1)
		go func() {
			logDone <- b.containers.Logs(ctx, ctr.ID, logs.ReadOptions{Stdout: true, Stderr: true, Follow: true, Done: done, Tail: -1},
				func(e logs.Entry) error {
					_, err := s.out.Write(e.Line)
					return err
				})
		}()
		var res container.WaitResult
		select {
		case res = <-waitc:
		case <-ctx.Done():
			_ = b.containers.Kill(context.WithoutCancel(ctx), ctr.ID, "KILL")
			select { // let it exit before it is removed
			case <-waitc:
			case <-time.After(10 * time.Second):
			}
			close(done)
			<-logDone
			return "", ctx.Err()
		}
		close(done)
		<-logDone
		if res.Error != "" {
			return "", fmt.Errorf("the command '%s' failed: %s", strings.Join(argv, " "), res.Error)
		}
		if res.ExitCode != 0 {
			//lint:ignore ST1005 Docker's exact message, which scripts match
			return "", fmt.Errorf("The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), res.ExitCode)
		}
		img, err := b.images.BuildStep(ctx, image.BuildStepOptions{
			Parent: s.imageID, Rootfs: ctr.ID, Config: cfg,
			History: ocispec.History{CreatedBy: createdBy},
		})
		if err != nil {
			return "", err
		}
		return img.ID.String(), nil
	})
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			return true
		}
	}
	return false
}
