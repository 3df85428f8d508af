package ociruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	lockName  = "lock"
)

// record is what the runtime keeps of a container in <root>/<id>/state.json:
// the OCI state plus what later verbs need.
type record struct {
	specs.State
	Rootfs     string      `json:"rootfs"`
	Created    time.Time   `json:"created"`
	Owner      string      `json:"owner"`
	StartTime  uint64      `json:"initStartTime"` // /proc/<pid>/stat field 22, against pid reuse
	CgroupPath string      `json:"cgroupPath"`
	Config     *specs.Spec `json:"config"`
	// InitExe is the init's own program, which /proc/<pid>/exe shows
	// until the init executes the user's process (see Kill).
	InitExe *fileID `json:"initExe,omitempty"`
}

// fileID names a file by device and inode.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// exeID is the fileID of pid's program; nil when it cannot be read.
func exeID(pid int) *fileID {
	var st unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(pid)+"/exe", &st) != nil {
		return nil
	}
	return &fileID{Dev: st.Dev, Ino: st.Ino}
}

// Status of a container as runc reports it.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
	StatusPaused  = "paused"
)

func (r *Runtime) dir(id string) string { return filepath.Join(r.root(), id) }

// writeRecord replaces state.json atomically (write, rename; the state
// root is runtime state, which a reboot ends, so nothing is synced).
func writeRecord(dir string, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), b, 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (r *Runtime) load(id string) (*record, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFoundf("container %q does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("container %q: corrupt %s: %w", id, stateFile, err)
	}
	rec.Status = r.status(&rec)
	return &rec, nil
}

// status computes a container's status from the kernel: its init gone (or
// a zombie, or a recycled pid) means stopped; the start barrier still in
// place means created.
func (r *Runtime) status(rec *record) specs.ContainerState {
	if !alive(rec.Pid, rec.StartTime) {
		return StatusStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(rec.ID), fifoName)); err == nil {
		return StatusCreated
	}
	if r.frozen(rec) {
		return StatusPaused
	}
	return StatusRunning
}

// alive says whether pid is a live (not zombie) process started at startTime.
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	st, state, err := procStartTime(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return startTime == 0 || st == startTime
}

// procStartTime reads the start time (clock ticks since boot) and state of pid.
func procStartTime(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0][0], err
}

// lock takes the container's lock (flock on <dir>/lock); unlock releases it.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFoundf("container %q does not exist", filepath.Base(dir))
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
