package ociruntime

import (
	"fmt"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/testutil"
)

// Net sysctls are allowed in a network namespace joined by path (the one
// the network service made for the container), never in the host's.
// (The host's is this thread's: /proc/self, the main thread's, may be
// parked in a container's by an earlier test.)
func TestNetSysctlInJoinedNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	own := testutil.TestNetNS(t)
	checkNetSysctl(t, own, true)
	checkNetSysctl(t, "/proc/thread-self/ns/net", false)
	checkNetSysctl(t, "/proc/1/ns/net", false)
}

// checkNetSysctl validates a spec that joins the network namespace at path
// and sets a net.* sysctl: it must pass if ok, else fail for that reason.
func checkNetSysctl(t *testing.T, path string, ok bool) {
	t.Helper()
	s := DefaultSpec(false)
	s.Process.Args = []string{"true"}
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = path
		}
	}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}
	err := Validate(s)
	if ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "needs a new network namespace")) {
		t.Errorf("network namespace %s: %v", path, err)
	}
}

// The host's network namespace is the calling thread's, not the main
// thread's: the main thread may be parked in a container's (see
// cmd/berth/init.go), and an exec that joins that container's network
// namespace by path may still set its net.* sysctls.
func TestNetSysctlWithParkedMainThread(t *testing.T) {
	if _, child := testutil.ParkedMainThread(t); !child {
		return
	}
	checkNetSysctl(t, fmt.Sprintf("/proc/%d/task/%[1]d/ns/net", os.Getpid()), true)
	checkNetSysctl(t, "/proc/thread-self/ns/net", false)
}
