package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNetNS makes a fresh network namespace, bind-mounted at path, with its
// loopback up; an existing one at path is kept. It plays the host for a
// daemon (`--host-netns`) or a second host in network tests.
func NewNetNS(path string) error {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		err = unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("new network namespace at %s: %w", path, err)
	}
	h, err := NetlinkAt(path)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// RemoveNetNS unmounts and removes a namespace made by NewNetNS.
func RemoveNetNS(path string) {
	unix.Unmount(path, unix.MNT_DETACH)
	os.Remove(path)
}

// TestNetNS makes a fresh namespace under a temp dir for the test and
// removes it at the end.
func TestNetNS(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveNetNS(path) })
	return path
}

// NetlinkAt is a netlink handle inside the namespace at path.
func NetlinkAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// InNetNS runs fn on a thread inside the namespace at path: sockets it
// opens belong to that namespace.
func InNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// ContainerMountsUnder lists the mounts below a daemon's exec root that
// belong to containers: the network service's warm pool of namespaces
// (netns/pool-*) is the daemon's own and is not listed.
func ContainerMountsUnder(execRoot string) ([]string, error) {
	ms, err := MountsUnder(execRoot)
	var out []string
	for _, m := range ms {
		if !strings.HasPrefix(filepath.Base(m), "pool-") || filepath.Base(filepath.Dir(m)) != "netns" {
			out = append(out, m)
		}
	}
	return out, err
}
