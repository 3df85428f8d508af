// Package testutil is what berth's tests share: the root-test gate, per-test
// data roots that leave no mount behind, and images made without a network.
package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := parseOctal(s[i+1 : i+4]); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func parseOctal(s string) (byte, error) {
	var v byte
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, os.ErrInvalid
		}
		v = v*8 + byte(c-'0')
	}
	return v, nil
}
