package ociruntime

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openInitBinary returns a file to exec as the container init that the
// container cannot write through (CVE-2019-5736: a container process that
// reaches the init's /proc/<pid>/exe must not be able to overwrite the host
// binary). It is a detached, read-only bind mount of the binary: no copy,
// a few syscalls per container. Where that is refused (no CAP_SYS_ADMIN) it
// falls back to a sealed memfd copy of the binary.
func openInitBinary(path string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err == nil {
			return os.NewFile(uintptr(fd), "berth-init"), nil
		}
		unix.Close(fd)
	}
	return sealedCopy(path)
}

func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd for the init binary: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-init")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal the init binary copy: %w", err)
	}
	return f, nil
}
