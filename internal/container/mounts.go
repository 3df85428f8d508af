package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/treecopy"
)

// Volumes is what the container service needs of the volume service.
type Volumes interface {
	// Ensure returns the volume called name and its data directory,
	// creating it when missing; with an empty name it creates an
	// anonymous volume.
	Ensure(ctx context.Context, name string, labels map[string]string) (string, string, error)
	// Mount records that container uses the volume and returns the host
	// path to bind; Adopt records it without mounting (after a daemon
	// restart, for containers still running); Unmount ends the use.
	Mount(ctx context.Context, name, container string) (string, error)
	Adopt(name, container string)
	Unmount(ctx context.Context, name, container string) error
	// Remove removes an anonymous volume a container no longer needs.
	Remove(ctx context.Context, name string) error
}

// Mount is one of a container's volumes or binds, as inspect shows it,
// plus whether the volume was made for it (anonymous: removed with it by
// rm -v and --rm) and whether the container's first start still has to
// copy the image's files at the destination into the volume, if it is
// empty then (Docker's default for volumes; -v ...:nocopy and --mount
// volume-nocopy turn it off).
type Mount struct {
	container.MountPoint
	Anonymous bool `json:",omitempty"`
	CopyData  bool `json:",omitempty"`
}

// volumeName is what Docker accepts as a named volume.
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// resolveMounts turns a new container's -v binds, --mount bind and volume
// entries, --volumes-from, and the anonymous VOLUMEs of its image and its
// config (anonVolumes) into mount points, creating the named
// volumes that do not exist and an anonymous volume for every destination
// that needs one, as Docker does at create. On error the volumes it made
// are removed.
func (s *Service) resolveMounts(ctx context.Context, hc *container.HostConfig, anonVolumes map[string]struct{}) (mps []Mount, err error) {
	if s.cfg.Volumes == nil {
		if len(hc.Binds) > 0 || len(anonVolumes) > 0 || slices.ContainsFunc(hc.Mounts, func(m mount.Mount) bool { return m.Type != mount.TypeTmpfs }) {
			return nil, errdefs.NotImplemented(errors.New("volumes are not available in this daemon"))
		}
		return nil, nil
	}
	var made []string
	defer func() {
		if err != nil {
			for _, name := range made {
				s.cfg.Volumes.Remove(context.WithoutCancel(ctx), name)
			}
		}
	}()
	seen := map[string]bool{}
	add := func(mp Mount, field string) error {
		dst := filepath.Clean(mp.Destination)
		if !filepath.IsAbs(dst) || dst == "/" {
			return errdefs.Invalidf("invalid %s: mount destination %q must be an absolute path other than /", field, mp.Destination)
		}
		if seen[dst] {
			return errdefs.Invalidf("invalid %s: duplicate mount point: %s", field, dst)
		}
		seen[dst] = true
		mp.Destination = dst
		if mp.Type == mount.TypeVolume {
			anonymous := mp.Name == ""
			labels := map[string]string(nil)
			if anonymous {
				labels = map[string]string{"com.docker.volume.anonymous": ""}
			}
			name, dir, err := s.cfg.Volumes.Ensure(ctx, mp.Name, labels)
			if err != nil {
				return fmt.Errorf("%s: volume %q: %w", field, mp.Name, err)
			}
			if anonymous {
				made = append(made, name)
			}
			mp.Name, mp.Source, mp.Driver, mp.Anonymous = name, dir, "local", anonymous
		}
		mps = append(mps, mp)
		return nil
	}
	for i, b := range hc.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return nil, fmt.Errorf("invalid Binds[%d] %q: %w", i, b, err)
		}
		copyData := mp.Type == mount.TypeVolume && !slices.Contains(strings.Split(mp.Mode, ","), "nocopy")
		if err := add(Mount{MountPoint: mp, CopyData: copyData}, fmt.Sprintf("Binds[%d]", i)); err != nil {
			return nil, err
		}
	}
	for i, m := range hc.Mounts {
		field := fmt.Sprintf("Mounts[%d]", i)
		mp := Mount{MountPoint: container.MountPoint{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly}}
		switch m.Type {
		case mount.TypeTmpfs:
			continue // made by the spec generator
		case mount.TypeBind:
			if !filepath.IsAbs(m.Source) {
				return nil, errdefs.Invalidf("invalid %s: bind source path %q must be absolute", field, m.Source)
			}
			if _, err := os.Stat(m.Source); err != nil {
				return nil, errdefs.Invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			mp.Source = filepath.Clean(m.Source)
			mp.Propagation = mount.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
		case mount.TypeVolume:
			if m.Source != "" && !volumeName.MatchString(m.Source) {
				return nil, errdefs.Invalidf("invalid %s: %q is not a valid volume name", field, m.Source)
			}
			mp.Name = m.Source
			mp.CopyData = m.VolumeOptions == nil || !m.VolumeOptions.NoCopy
		default:
			return nil, errdefs.NotImplemented(fmt.Errorf("invalid %s: mount type %q is not supported", field, m.Type))
		}
		if err := add(mp, field); err != nil {
			return nil, err
		}
	}
	// Then --volumes-from: the container's own binds and mounts win, and
	// both win over the image's VOLUMEs, as in Docker.
	inherited, err := s.volumesFrom(hc.VolumesFrom)
	if err != nil {
		return nil, err
	}
	for _, mp := range inherited {
		if !seen[mp.Destination] {
			if err := add(mp, "VolumesFrom"); err != nil {
				return nil, err
			}
		}
	}
	dsts := make([]string, 0, len(anonVolumes))
	for d := range anonVolumes {
		dsts = append(dsts, d)
	}
	slices.Sort(dsts)
	for _, d := range dsts {
		if seen[filepath.Clean(d)] {
			continue
		}
		if err := add(Mount{MountPoint: container.MountPoint{Type: mount.TypeVolume, Destination: d, RW: true}, CopyData: true}, "VOLUME "+d); err != nil {
			return nil, err
		}
	}
	return mps, nil
}

// volumesFrom reads --volumes-from's "CONTAINER[:ro|:rw]" entries: the
// named containers' volumes and binds, read-only with ro, read-write with
// rw, and as each container has them otherwise. They are shared, never
// anonymous to the new container (rm -v leaves them) and never filled
// again from its image.
func (s *Service) volumesFrom(refs []string) ([]Mount, error) {
	var out []Mount
	for i, ref := range refs {
		name, mode, _ := strings.Cut(ref, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, errdefs.Invalidf("invalid VolumesFrom[%d] %q: mode %q: want ro or rw", i, ref, mode)
		}
		from, err := s.index.get(name)
		if err != nil {
			return nil, err
		}
		for _, m := range from.Mounts {
			mp := Mount{MountPoint: m.MountPoint}
			switch mode {
			case "ro":
				mp.RW = false
			case "rw":
				mp.RW = true
			}
			out = append(out, mp)
		}
	}
	return out, nil
}

// parseBind reads Docker's -v syntax: [SOURCE:]DESTINATION[:OPTIONS],
// where SOURCE is an absolute host path (a bind) or a volume name, and
// OPTIONS a comma list of ro/rw, a propagation mode, z/Z and nocopy.
func parseBind(spec string) (container.MountPoint, error) {
	parts := strings.Split(spec, ":")
	mp := container.MountPoint{Type: mount.TypeVolume, RW: true}
	var opts string
	switch len(parts) {
	case 1:
		mp.Destination = parts[0]
	case 2:
		if filepath.IsAbs(parts[1]) {
			mp.Source, mp.Destination = parts[0], parts[1]
		} else {
			mp.Destination, opts = parts[0], parts[1]
		}
	case 3:
		mp.Source, mp.Destination, opts = parts[0], parts[1], parts[2]
	default:
		return mp, errdefs.Invalidf("want [source:]destination[:options]")
	}
	if mp.Destination == "" {
		return mp, errdefs.Invalidf("empty destination")
	}
	switch {
	case mp.Source == "":
	case filepath.IsAbs(mp.Source):
		mp.Type, mp.Source, mp.Propagation = mount.TypeBind, filepath.Clean(mp.Source), mount.PropagationRPrivate
	case volumeName.MatchString(mp.Source):
		mp.Name, mp.Source = mp.Source, ""
	default:
		return mp, errdefs.Invalidf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed; if you intended to pass a host directory, use an absolute path", mp.Source)
	}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "ro":
				mp.RW = false
			case "rw":
				mp.RW = true
			case "z", "Z", "nocopy":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				if mp.Type != mount.TypeBind {
					return mp, errdefs.Invalidf("propagation %q applies to bind mounts only", o)
				}
				mp.Propagation = mount.Propagation(o)
			default:
				return mp, errdefs.Invalidf("invalid mode: %s", o)
			}
		}
		mp.Mode = opts
	}
	return mp, nil
}

// mountVolumes makes the spec mounts of a starting container: each volume
// is mounted (counted as used by it), given the image's files at its
// destination on the container's first start (copyImageData), and bound;
// binds are bound. A -v bind whose source is missing gets it made, as
// Docker does. On error the volumes it took are released.
func (s *Service) mountVolumes(ctx context.Context, c *Container, rootfs string) (ms []specs.Mount, err error) {
	var taken []string
	defer func() {
		if err != nil {
			for _, name := range taken {
				s.cfg.Volumes.Unmount(context.WithoutCancel(ctx), name, c.ID)
			}
		}
	}()
	for _, mp := range c.Mounts {
		src := mp.Source
		switch mp.Type {
		case mount.TypeVolume:
			if src, err = s.cfg.Volumes.Mount(ctx, mp.Name, c.ID); err != nil {
				return nil, fmt.Errorf("volume %s at %s: %w", mp.Name, mp.Destination, err)
			}
			taken = append(taken, mp.Name)
			if mp.CopyData {
				if err := copyImageData(ctx, rootfs, mp.Destination, src); err != nil {
					return nil, fmt.Errorf("volume %s at %s: copy the image's files into it: %w", mp.Name, mp.Destination, err)
				}
			}
		case mount.TypeBind:
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("bind source %s: %w", src, err)
				}
			}
		}
		opts := []string{"rbind"}
		if !mp.RW {
			opts = append(opts, "ro")
		}
		if mp.Propagation != "" {
			opts = append(opts, string(mp.Propagation))
		} else {
			opts = append(opts, "rprivate")
		}
		ms = append(ms, specs.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: opts})
	}
	return ms, nil
}

// copyImageData fills the volume directory dir, when it is empty, with
// what the container's rootfs holds at dest (the image's files there), as
// Docker does at a volume's first use: the contents, and the directory's
// owner, mode and times. dest is resolved inside the rootfs, symlinks
// included (openat2 RESOLVE_IN_ROOT); nothing there, or not a directory,
// is nothing to copy. The copy never follows a symlink on either side
// (treecopy); a copy that fails removes what it made at the top.
func copyImageData(ctx context.Context, rootfs, dest, dir string) error {
	root, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	fd, err := openat2(int(root.Fd()), relPath(dest), unix.O_RDONLY|unix.O_DIRECTORY, resolveInRoot)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s in the container: %w", dest, err)
	}
	src := os.NewFile(uintptr(fd), dest)
	defer src.Close()
	dst, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dst.Close()
	if names, err := dst.Readdirnames(1); len(names) > 0 || (err != nil && err != io.EOF) {
		return err // not empty: nothing to do
	}
	top, err := src.Readdirnames(-1)
	if err != nil {
		return err
	}
	if err := treecopy.Into(ctx, src, dst); err != nil {
		for _, name := range top {
			os.RemoveAll(filepath.Join(dir, name)) // never follows a symlink
		}
		return err
	}
	return nil
}

// releaseVolumes ends a container's use of its volumes (it exited).
func (s *Service) releaseVolumes(ctx context.Context, c *Container) {
	for _, mp := range c.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		if err := s.cfg.Volumes.Unmount(ctx, mp.Name, c.ID); err != nil {
			log.From(ctx).Warn("releasing a volume", "container", c.ID, "volume", mp.Name, "err", err)
		}
	}
}

// removeAnonymousVolumes removes the anonymous volumes of a removed
// container (rm -v, --rm).
func (s *Service) removeAnonymousVolumes(ctx context.Context, c *Container) {
	for _, mp := range c.Mounts {
		if mp.Type != mount.TypeVolume || !mp.Anonymous {
			continue
		}
		if err := s.cfg.Volumes.Remove(ctx, mp.Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			log.From(ctx).Warn("removing an anonymous volume", "container", c.ID, "volume", mp.Name, "err", err)
		}
	}
}

// adoptVolumes counts a running container's volumes as used again, after
// a daemon restart (the counts live in memory; the mounts stayed).
func (s *Service) adoptVolumes(c *Container) {
	if s.cfg.Volumes == nil {
		return
	}
	for _, mp := range c.Mounts {
		if mp.Type == mount.TypeVolume {
			s.cfg.Volumes.Adopt(mp.Name, c.ID)
		}
	}
}

// mountPoints are the container's mounts as inspect shows them.
func (c *Container) mountPoints() []container.MountPoint {
	out := make([]container.MountPoint, 0, len(c.Mounts))
	for _, m := range c.Mounts {
		out = append(out, m.MountPoint)
	}
	return out
}

// VolumeUsers lists the containers, running or not, that have volume name
// among their mounts.
func (s *Service) VolumeUsers(name string) []string {
	var ids []string
	for _, c := range s.index.all() {
		for _, mp := range c.Mounts {
			if mp.Type == mount.TypeVolume && mp.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids
}
