package engine

import (
	"context"
	"errors"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/spec"
)

// images gives the container service the image store.
type images struct{ store *image.Store }

func (a images) Resolve(ctx context.Context, ref string) (container.Image, error) {
	img, _, err := a.store.Resolve(ctx, ref)
	if err != nil {
		return container.Image{}, err
	}
	name := ref
	if tags := img.RepoTags(); len(tags) > 0 {
		name = tags[0]
	}
	return container.Image{ID: img.ID.String(), Name: name, Config: *img.ContainerConfig()}, nil
}

func (a images) PrepareRootfs(ctx context.Context, id, imageID, target string) error {
	return a.store.PrepareRootfs(ctx, id, imageID, target)
}

// UnmountRootfs unmounts a container's rootfs; one not mounted is fine.
func (a images) UnmountRootfs(ctx context.Context, id, target string) error {
	err := snapshot.Unmount(target)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (a images) RemoveRootfs(ctx context.Context, id string) error {
	return a.store.RemoveRootfs(ctx, id)
}

// makeSpec is the container service's spec generator: the container's and
// its image's configuration, its mounted rootfs and /etc files.
func makeSpec(ctx context.Context, c *container.Container, img container.Image, f container.SpecFiles) (*specs.Spec, error) {
	return spec.Generate(spec.Input{
		ID: c.ID, Config: c.Config, Host: c.HostConfig, Image: img.Config,
		Path: c.Path, Args: c.Args, RootfsPath: f.Rootfs,
		Users:        spec.RootfsUserDB{Rootfs: f.Rootfs},
		HostnamePath: f.HostnamePath, HostsPath: f.HostsPath, ResolvConfPath: f.ResolvConfPath,
		NetNSPath:        f.NetNSPath,
		CgroupNS:         cgroupV2(),
		LookupDevice:     spec.HostDevices,
		HostCapabilities: hostCaps(),
	})
}

// hostCaps is what --privileged gives: the daemon's bounding set, read once.
var hostCaps = sync.OnceValue(func() []string {
	caps, err := spec.HostCapabilities()
	if err != nil {
		return nil // every capability; capset names the one that fails
	}
	return caps
})

func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}
