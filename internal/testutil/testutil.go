// Package testutil is what berth's tests share: the root-test gate, per-test
// data roots that leave no mount behind, and images made without a network.
package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/mountinfo"
)

// TierEnv names the environment variable the Makefile sets per test tier:
// "skip" in the unit tier (root tests are left to root-test), "require" in
// the root, integration and conformance tiers, where a test that cannot run
// fails instead of skipping, so CI never skips silently.
const TierEnv = "BERTH_TEST_ROOT"

// required reports whether a missing prerequisite must fail the test: the
// tier says so, or the test runs in CI.
func required() bool {
	return os.Getenv(TierEnv) == "require" || (os.Getenv("CI") == "true" && os.Getenv(TierEnv) != "skip")
}

// RequireRoot skips t unless it runs as root, with a reason. Where root
// tests are required (BERTH_TEST_ROOT=require, or CI=true) it fails
// instead. In the unit tier (BERTH_TEST_ROOT=skip) it always skips.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Getenv(TierEnv) == "skip" {
		t.Skip("needs root: runs in `make root-test`")
	}
	if os.Geteuid() != 0 {
		if required() {
			t.Fatal("needs root, and root tests are required here (BERTH_TEST_ROOT=require or CI=true)")
		}
		t.Skip("needs root: run `make root-test` as root")
	}
}

// RequireFile skips t when path is missing (naming the Debian package that
// provides it), or fails where prerequisites are required.
func RequireFile(t testing.TB, path, debianPackage string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := path + " is missing: apt-get install " + debianPackage + " (or run `make deps`)"
		if required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// DataRoot returns a fresh directory for one test's daemon or runtime state.
// When the test ends, every mount below it is unmounted, deepest first, and
// then it is removed: no test leaves a mount behind.
func DataRoot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir() // its RemoveAll runs after the unmount below
	t.Cleanup(func() {
		if err := UnmountAll(dir); err != nil {
			t.Errorf("unmount below %s: %v", dir, err)
		}
	})
	return dir
}

// UnmountAll detaches every mount at or below dir, deepest first.
func UnmountAll(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var firstErr error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// MountsUnder lists the mount points at or below dir in this mount
// namespace, deepest first.
func MountsUnder(dir string) ([]string, error) {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	return mountinfo.Under(dir, true)
}

// RemoveCgroupParent removes a test's (empty) parent cgroup name from every
// hierarchy: v1 controllers, the hybrid unified mount and a pure v2 root.
// The runtime leaves a spec's parent directories in place, as runc does.
func RemoveCgroupParent(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	for _, d := range append(dirs, filepath.Join("/sys/fs/cgroup", name)) {
		os.Remove(d)
	}
}
