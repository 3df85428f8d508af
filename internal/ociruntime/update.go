package ociruntime

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/cgroup"
	"github.com/berth/berth/internal/errdefs"
)

// Update applies new resource limits to a created, running or paused
// container's cgroup.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return errdefs.Invalidf("update %q: no resources given", id)
	}
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if rec.Status == StatusStopped {
		return errdefs.Conflictf("container %q is stopped", id)
	}
	cg, err := newCgroupManager(rec.CgroupPath)
	if err != nil {
		return err
	}
	if err := cg.Set(res); err != nil {
		return fmt.Errorf("update %q: %w", id, err)
	}
	return nil
}

// Stats reads the container's cgroup statistics.
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroup.Stats, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	m, err := cgroup.New(rec.CgroupPath, cgroup.Options{})
	if err != nil {
		return nil, err
	}
	st, err := cgroup.ReadStats(m)
	if err != nil {
		return nil, fmt.Errorf("stats %q: %w", id, err)
	}
	return st, nil
}
