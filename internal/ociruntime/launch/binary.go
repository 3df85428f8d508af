package launch

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/ociruntime/spawn"
)

// OpenBinary returns a file to exec as the container init that the
// container cannot write through (CVE-2019-5736: a container process that
// reaches the init's /proc/<pid>/exe must not be able to overwrite the host
// binary). It is a detached, read-only bind mount of the binary: no copy.
// Where that is refused (no CAP_SYS_ADMIN) it falls back to a sealed memfd
// copy of the binary. The caller closes the returned file.
//
// The mount (or copy) is made once per path and process, and each caller
// gets a duplicate of its fd: one long-lived mount saves two syscalls per
// container (or a copy of the binary per container, for the fallback).
func OpenBinary(path string) (*os.File, error) {
	initBinaries.mu.Lock()
	defer initBinaries.mu.Unlock()
	f, ok := initBinaries.files[path]
	if !ok {
		var err error
		if f, err = detachedReadOnly(path); err != nil {
			if f, err = sealedCopy(path); err != nil {
				return nil, err
			}
		}
		initBinaries.files[path] = f
	}
	dup, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate the init binary's fd: %w", err)
	}
	return os.NewFile(uintptr(dup), "berth-init"), nil
}

// initBinaries are the init binaries this process made safe to exec, by
// path; they live (and stay open) as long as the process.
var initBinaries = struct {
	mu    sync.Mutex // guards files
	files map[string]*os.File
}{files: map[string]*os.File{}}

// detachedReadOnly makes a detached, read-only, nosuid, nodev bind mount of
// the file at path and returns an O_PATH file of it (spawn.DetachedReadOnly).
func detachedReadOnly(path string) (*os.File, error) {
	fd, err := spawn.DetachedReadOnly(path)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "berth-init"), nil
}

// adoptBinary keeps f, a detached read-only mount of path that the early
// spare's start made, as this process's mount of path, unless it has one
// already (then f is closed).
func adoptBinary(path string, f *os.File) {
	initBinaries.mu.Lock()
	defer initBinaries.mu.Unlock()
	if _, ok := initBinaries.files[path]; ok {
		f.Close()
		return
	}
	initBinaries.files[path] = f
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
