package mountinfo_test

import (
	"testing"

	"github.com/berth/berth/internal/mountinfo"
	"github.com/berth/berth/internal/testutil"
)

// Under lists the calling thread's mounts, not the main thread's: the main
// thread may be parked in a container's mount namespace (see
// cmd/berth/init.go), and a daemon asking whether a directory holds a
// mount before deleting it must see the host's.
func TestUnderIsThisThreadsView(t *testing.T) {
	dir, child := testutil.ParkedMainThread(t)
	if !child {
		return
	}
	if mps, err := mountinfo.Under(dir, true); err != nil || len(mps) != 0 {
		t.Errorf("Under(%s) = %v, %v: the main thread's mounts, want none", dir, mps, err)
	}
	if !mountinfo.Busy("/proc") {
		t.Error("Busy(/proc) = false")
	}
}
