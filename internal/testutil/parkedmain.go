package testutil

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// parkedMainEnv names, in the child ParkedMainThread starts, the directory
// its main thread has a tmpfs mounted on.
const parkedMainEnv = "BERTH_TEST_PARKED_MAIN"

// In the child, the main thread is put where Go leaves a main thread on
// which a goroutine that joined a container's namespaces ended: locked
// away from every other goroutine, in new mount and network namespaces,
// with a mount of its own. It runs during package initialisation, the
// only time a package can be sure to hold the main thread.
func init() {
	dir := os.Getenv(parkedMainEnv)
	if dir == "" {
		return
	}
	runtime.LockOSThread()
	err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWNET)
	if err == nil {
		err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	}
	if err == nil {
		err = unix.Mount("parked", dir, "tmpfs", 0, "")
	}
	if err != nil {
		println("park the main thread:", err.Error())
		os.Exit(2)
	}
}

// ParkedMainThread runs t again in a child process whose main thread
// (what /proc/self shows) is in mount and network namespaces of its own,
// with a tmpfs on dir, while t's goroutine is in the host's. In the child
// it returns dir and true: t checks that what it reads is its own
// thread's view, not the main thread's. In the parent it waits for the
// child, fails t if the child failed, and returns false.
func ParkedMainThread(t *testing.T) (dir string, child bool) {
	t.Helper()
	if dir := os.Getenv(parkedMainEnv); dir != "" {
		return dir, true
	}
	RequireRoot(t)
	dir = t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), parkedMainEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the child with a parked main thread: %v\n%s", err, out)
	}
	return "", false
}
