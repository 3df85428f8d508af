package ociruntime

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/cgroup"
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
