package ociruntime

import (
	"errors"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/cgroup"
	"github.com/berth/berth/internal/errdefs"
)

// cgroupManager is the little the runtime needs of a container's cgroup
// (internal/cgroup's Manager satisfies it).
type cgroupManager interface {
	Apply(pid int) error
	Set(r *specs.LinuxResources) error
	Freeze() error
	Thaw() error
	Pids() ([]int, error)
	Destroy() error
	JoinThread() (leave func() error, err error)
	TaskFiles() ([]*os.File, error)
}

// newCgroupManager opens the cgroup at path (spec.Linux.CgroupsPath).
var newCgroupManager = func(path string) (cgroupManager, error) { return cgroup.New(path, cgroup.Options{}) }

// cgroupPath is the container's cgroup path: the spec's, or /berth/<id>.
func cgroupPath(s *specs.Spec, id string) string {
	if s.Linux != nil && s.Linux.CgroupsPath != "" {
		return s.Linux.CgroupsPath
	}
	return "/berth/" + id
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// cgroupSetup is a container's cgroup being made on another goroutine
// while Create does the rest of its work (the directories of every v1
// hierarchy take most of a millisecond here). Create owns it: it hands
// the cgroup to the launched init or abandons it.
type cgroupSetup struct {
	done chan struct{}
	cg   cgroupManager // nil until made; set if Apply succeeded
	// tasks are each v1 hierarchy's tasks file, for a spare to join by
	// (nil on v2, where a thread cannot join alone).
	tasks []*os.File
	err   error
}

// startCgroupSetup starts making the cgroup at path (cgroupPath).
func startCgroupSetup(path string) *cgroupSetup {
	c := &cgroupSetup{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		cg, err := newCgroupManager(path)
		if err != nil {
			c.err = err
			return
		}
		if err := cg.Apply(0); err != nil {
			c.err = err
			return
		}
		c.cg = cg
		tasks, err := cg.TaskFiles()
		switch {
		case err == nil:
			c.tasks = tasks
		case !errors.Is(err, errdefs.ErrNotImplemented):
			c.err = err
		}
	}()
	return c
}

// wait returns the cgroup and its tasks files once made.
func (c *cgroupSetup) wait() (cgroupManager, []*os.File, error) {
	<-c.done
	return c.cg, c.tasks, c.err
}

// release closes the tasks files; the cgroup stays (the init's now).
func (c *cgroupSetup) release() {
	<-c.done
	closeFiles(c.tasks)
	c.tasks = nil
}

// abandon undoes the setup of a create that failed before its init was
// launched: the tasks files close and the cgroup is removed.
func (c *cgroupSetup) abandon() {
	c.release()
	if c.cg != nil {
		c.cg.Destroy()
	}
}
