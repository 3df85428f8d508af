package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// AllPids lists every process in m's cgroup and in the cgroups below it
// (a container may make sub-cgroups of its own through its cgroup
// namespace), each pid once, sorted. On v1 it walks the pids hierarchy if
// mounted, else the first one m names.
func AllPids(m Manager) ([]int, error) {
	paths := m.Paths()
	dir, ok := paths[""]
	if !ok {
		dir, ok = paths["pids"]
	}
	if !ok {
		for _, c := range slices.Sorted(maps.Keys(paths)) {
			dir = paths[c]
			break
		}
	}
	if dir == "" {
		return nil, nil
	}
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a sub-cgroup removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		got, err := readPids(p)
		if err != nil {
			return err
		}
		pids = append(pids, got...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroup: list pids under %s: %w", dir, err)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// JoinUnified, on a Hybrid host, creates path in the cgroup2 hierarchy at
// <root>/unified and moves pid into it, as runc does, so that tools
// working on cgroup2 (systemd, BPF programs) see the container. Resource
// limits stay with v1. It returns the directory, or "" when the host is
// not Hybrid. It never fails because a controller is absent: the unified
// hierarchy of a hybrid host usually holds none.
func JoinUnified(root, path string, pid int) (string, error) {
	if root == "" {
		root = DefaultRoot
	}
	if mode, err := Mode(root); err != nil || mode != Hybrid {
		return "", err
	}
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return "", fmt.Errorf("cgroup path %q: must name a cgroup below the root", path)
	}
	dir := filepath.Join(root, "unified", clean)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cgroup: unified hierarchy: %w", err)
	}
	if pid > 0 {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// RemoveUnified removes what JoinUnified made (dir, as it returned),
// retrying briefly while exiting tasks still count.
func RemoveUnified(dir string) error {
	if dir == "" {
		return nil
	}
	return rmdir(dir)
}
