package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/spec"
	"github.com/berth/berth/internal/volume"
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

func (a images) PrepareRootfs(ctx context.Context, id, imageID, target string, volatile bool) error {
	return a.store.PrepareRootfs(ctx, id, imageID, target, image.RootfsOptions{Volatile: volatile})
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

func (a images) RootfsIDs(ctx context.Context) ([]string, error) { return a.store.RootfsIDs(ctx) }

// specGen is the container service's spec generator.
type specGen struct {
	initPath string // berth's tiny init, bound at /sbin/docker-init for --init
}

// makeSpec makes a container's spec from its and its image's
// configuration, its mounted rootfs and /etc files.
func (g specGen) makeSpec(ctx context.Context, c *container.Container, img container.Image, f container.SpecFiles) (*specs.Spec, error) {
	return spec.Generate(spec.Input{
		ID: c.ID, Config: c.Config, Host: c.HostConfig, Image: img.Config,
		Path: c.Path, Args: c.Args, RootfsPath: f.Rootfs,
		Users:        spec.RootfsUserDB{Rootfs: f.Rootfs},
		HostnamePath: f.HostnamePath, HostsPath: f.HostsPath, ResolvConfPath: f.ResolvConfPath,
		NetNSPath:        f.NetNSPath,
		PidNSPath:        f.PidNSPath,
		IPCNSPath:        f.IPCNSPath,
		ShmPath:          f.ShmPath,
		CgroupNS:         cgroupV2(),
		LookupDevice:     spec.HostDevices,
		HostCapabilities: hostCaps(),
		InitPath:         g.initPath,
		Mounts:           f.Mounts,
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

// volumeAdapter gives the container service the volume service.
type volumeAdapter struct{ *volume.Service }

// Remove removes an anonymous volume its container no longer needs.
func (a volumeAdapter) Remove(ctx context.Context, name string) error {
	return a.Service.Remove(ctx, name, false)
}

// CommitRootfs makes an image of a container's rootfs (docker commit).
func (a images) CommitRootfs(ctx context.Context, id, imageID string, opts container.ImageCommit) (string, error) {
	img, err := a.store.Commit(ctx, id, imageID, image.CommitOptions{Ref: opts.Ref, Config: opts.Config, Comment: opts.Comment, Author: opts.Author})
	if err != nil {
		return "", err
	}
	return img.ID.String(), nil
}

// RootfsUsage is the space of a container's own changes.
func (a images) RootfsUsage(ctx context.Context, id string) (int64, error) {
	return a.store.RootfsUsage(ctx, id)
}

// RootfsLayers returns the overlay directories of a container's rootfs
// (docker diff).
func (a images) RootfsLayers(ctx context.Context, id string) (string, []string, error) {
	sn := a.store.Snapshotter()
	key := "container-" + id
	upper, overlayWh, ok := sn.ApplyDir(key)
	if !ok {
		return "", nil, errdefs.NotFoundf("container %s has no root filesystem", id)
	}
	if !overlayWh {
		return "", nil, errdefs.NotImplemented(errors.New("docker diff needs the overlay snapshotter"))
	}
	mounts, err := sn.Mounts(ctx, key)
	if err != nil {
		return "", nil, err
	}
	var lowers []string
	for _, m := range mounts {
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = append(lowers, strings.Split(v, ":")...)
			}
		}
	}
	return upper, lowers, nil
}
