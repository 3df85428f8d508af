package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// defaultShmSize is /dev/shm's size without --shm-size, as Docker's.
const defaultShmSize = 64 << 20

// sharedNamespaces resolves what c shares with other containers, as
// Docker does: --pid container:<id> and --ipc container:<id> join the
// other's namespaces (through its init's pid), and the IPC joiner binds the
// other's /dev/shm too, which a --ipc shareable container has on the host
// (shmDir) for that. The other container must be running, and for IPC
// shareable.
func (s *Service) sharedNamespaces(c *Container) (pidNS, ipcNS, shm string, err error) {
	if pm := c.HostConfig.PidMode; pm.IsContainer() {
		other, err := s.namespaceDonor(c, pm.Container(), "PID")
		if err != nil {
			return "", "", "", err
		}
		pidNS = fmt.Sprintf("/proc/%d/ns/pid", other.State.Pid)
	}
	switch im := c.HostConfig.IpcMode; {
	case im.IsContainer():
		other, err := s.namespaceDonor(c, im.Container(), "IPC")
		if err != nil {
			return "", "", "", err
		}
		if !other.HostConfig.IpcMode.IsShareable() {
			return "", "", "", errdefs.Conflictf("cannot join IPC of a non-shareable container: %s (start it with --ipc shareable)", other.Name)
		}
		ipcNS, shm = fmt.Sprintf("/proc/%d/ns/ipc", other.State.Pid), s.shmDir(other.ID)
	case im.IsShareable():
		shm = s.shmDir(c.ID)
	}
	return pidNS, ipcNS, shm, nil
}

// namespaceDonor is the running container ref whose namespace (what:
// network, PID, IPC) c joins.
func (s *Service) namespaceDonor(c *Container, ref, what string) (*Container, error) {
	other, err := s.index.get(ref)
	if err != nil {
		return nil, fmt.Errorf("joining %s of container: %w", what, err)
	}
	if other.ID == c.ID {
		return nil, errdefs.Invalidf("cannot join own %s namespace", what)
	}
	if !other.Running() || other.State.Pid == 0 {
		return nil, errdefs.Conflictf("cannot join %s namespace of a non running container: container %s is %s", what, other.Name, other.State.Status)
	}
	return other, nil
}

// shmDir is where a --ipc shareable container's /dev/shm is mounted on the
// host, beside its rootfs.
func (s *Service) shmDir(id string) string { return filepath.Join(s.bundle(id), "shm") }

// mountShm mounts the /dev/shm of a --ipc shareable container: a tmpfs of
// --shm-size (64 MiB by default), as the container's own /dev/shm would be.
func (s *Service) mountShm(c *Container) error {
	dir := s.shmDir(c.ID)
	unmountShm(dir) // a leftover of a crash
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	size := c.HostConfig.ShmSize
	if size <= 0 {
		size = defaultShmSize
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return fmt.Errorf("mount the shareable /dev/shm: %w", err)
	}
	return nil
}

// unmountShm unmounts dir if something is mounted there.
func unmountShm(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", dir, err)
}

// unmountRootfs unmounts what a start mounted under the container's
// bundle: its shareable /dev/shm, if any, then its rootfs. Nothing under the
// bundle may stay mounted once it returns without an error: the bundle is
// then deleted.
func (s *Service) unmountRootfs(ctx context.Context, id string) error {
	if err := unmountShm(s.shmDir(id)); err != nil {
		return err
	}
	return s.cfg.Images.UnmountRootfs(ctx, id, s.rootfs(id))
}
