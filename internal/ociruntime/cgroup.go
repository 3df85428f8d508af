package ociruntime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupManager is the little the runtime needs of a container's cgroup.
// It is the seam to internal/cgroup (helper A2's v1+v2 manager); until that
// lands, v1Cgroup below places the init in every mounted v1 hierarchy.
type cgroupManager interface {
	Apply(pid int) error
	Set(r *specs.LinuxResources) error
	Freeze() error
	Thaw() error
	Pids() ([]int, error)
	Destroy() error
}

// newCgroupManager opens the cgroup at path (spec.Linux.CgroupsPath).
var newCgroupManager = func(path string) (cgroupManager, error) { return newV1Cgroup(path) }

// cgroupPath is the container's cgroup path: the spec's, or /berth/<id>.
func cgroupPath(s *specs.Spec, id string) string {
	if s.Linux != nil && s.Linux.CgroupsPath != "" {
		return s.Linux.CgroupsPath
	}
	return "/berth/" + id
}

// v1Cgroup is a stand-in manager: one directory per mounted hierarchy,
// no resource limits.
type v1Cgroup struct{ dirs []string }

func newV1Cgroup(path string) (*v1Cgroup, error) {
	if strings.Contains(path, "..") {
		return nil, fmt.Errorf("linux.cgroupsPath: %q must not contain ..", path)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var c v1Cgroup
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := indexOf(fields, "-")
		if i < 0 || i+1 >= len(fields) || fields[i+1] != "cgroup" {
			continue
		}
		c.dirs = append(c.dirs, filepath.Join(fields[4], filepath.Clean("/"+path)))
	}
	return &c, sc.Err()
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func (c *v1Cgroup) Apply(pid int) error {
	for _, d := range c.dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: add %d to %s: %w", pid, d, err)
		}
	}
	return nil
}

func (c *v1Cgroup) Set(r *specs.LinuxResources) error { return nil }
func (c *v1Cgroup) Freeze() error                     { return c.freezer("FROZEN") }
func (c *v1Cgroup) Thaw() error                       { return c.freezer("THAWED") }

func (c *v1Cgroup) freezer(state string) error {
	for _, d := range c.dirs {
		if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
			return os.WriteFile(filepath.Join(d, "freezer.state"), []byte(state), 0)
		}
	}
	return errors.New("cgroup: no freezer hierarchy")
}

func (c *v1Cgroup) Pids() ([]int, error) {
	seen := map[int]bool{}
	var pids []int
	for _, d := range c.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(l); err == nil && !seen[p] {
				seen[p] = true
				pids = append(pids, p)
			}
		}
		if len(pids) > 0 {
			break
		}
	}
	return pids, nil
}

func (c *v1Cgroup) Destroy() error {
	var errs []error
	for _, d := range c.dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
