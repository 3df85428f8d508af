package ociruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order with the container state on stdin; the
// first failure stops them. A hook's timeout (seconds) kills it.
func runHooks(ctx context.Context, point string, hooks []specs.Hook, state specs.State) error {
	return runHooksMode(ctx, point, hooks, state, false)
}

// runHooksAll runs every hook even when some fail and returns their
// errors joined: poststart and poststop, whose failures the spec wants
// logged as warnings while "the remaining hooks and lifecycle continue".
func runHooksAll(ctx context.Context, point string, hooks []specs.Hook, state specs.State) error {
	return runHooksMode(ctx, point, hooks, state, true)
}

func runHooksMode(ctx context.Context, point string, hooks []specs.Hook, state specs.State, all bool) error {
	in, err := json.Marshal(state)
	if err != nil {
		return err
	}
	var errs []error
	for i, h := range hooks {
		hctx := ctx
		if h.Timeout != nil && *h.Timeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
			defer cancel()
		}
		cmd := exec.CommandContext(hctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(in)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			if hctx.Err() != nil {
				err = fmt.Errorf("timed out after %ds", *h.Timeout)
			}
			err = fmt.Errorf("hooks.%s[%d] (%s): %w: %s", point, i, h.Path, err, bytes.TrimSpace(out.Bytes()))
			if !all {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
