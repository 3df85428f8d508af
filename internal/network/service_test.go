package network

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/testutil"
)

// serviceEnv is what a test opens services on: the metadata and state
// stores, an exec root and a fresh namespace playing the host, all gone
// when the test ends. A second service opened on it is the daemon after a
// restart.
type serviceEnv struct {
	db, state *metadata.DB
	exec, ns  string
}

func newServiceEnv(t testing.TB) serviceEnv {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := serviceEnv{db: db, exec: filepath.Join(dir, "exec"), ns: testutil.TestNetNS(t)}
	t.Cleanup(func() { testutil.UnmountAll(e.exec) })
	if e.state, err = metadata.OpenState(e.exec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.state.Close() })
	return e
}

// open opens a service with a pool of that size; it closes when the test ends.
func (e serviceEnv) open(t testing.TB, pool int) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{DB: e.db, State: e.state, ExecRoot: e.exec, HostNetNS: e.ns, PoolSize: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func links(t *testing.T, s *Service) []string {
	t.Helper()
	ls, err := s.host.links()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestServiceLifecycleAndReconcile: create, attach with a fixed and a
// random address, refuse what Docker refuses; then a "crash" (the
// service dropped without detaching, a stale veth and namespace planted)
// and a reopen that keeps what the store knows and removes the rest.
func TestServiceLifecycleAndReconcile(t *testing.T) {
	env := newServiceEnv(t)
	db, state, exec, ns := env.db, env.state, env.exec, env.ns
	ctx := context.Background()
	s := env.open(t, 0)

	n, err := s.Create(ctx, CreateOptions{Name: "app", Subnet: "10.9.0.0/24", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []CreateOptions{
		{Name: "app"}, {Name: "other", Subnet: "10.9.0.128/25"}, {Name: "x y"}, {Name: "gw", Subnet: "10.10.0.0/24", Gateway: "10.11.0.1"},
		{Name: "drv", Driver: "overlay"},
		{Name: "steal", Options: map[string]string{"com.docker.network.bridge.name": "lo"}}, // the host's lo is no bridge
	} {
		if _, err := s.Create(ctx, bad); err == nil {
			t.Errorf("create %+v succeeded", bad)
		}
	}
	fixed := &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.Gateway.Next().Next().Next()}}
	a1, err := s.Attach(ctx, AttachRequest{ContainerID: strings.Repeat("a", 64), Name: "one", Mode: "app",
		Endpoints: map[string]*network.EndpointSettings{"app": fixed}})
	if err != nil {
		t.Fatal(err)
	}
	if a1.IP.String() != "10.9.0.4" || a1.Nameserver != n.Gateway {
		t.Fatalf("attachment %+v", a1)
	}
	if _, err := s.Attach(ctx, AttachRequest{ContainerID: strings.Repeat("b", 64), Name: "two", Mode: "app",
		Endpoints: map[string]*network.EndpointSettings{"app": fixed}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("a second container on the same --ip: %v", err)
	}
	a2, err := s.Attach(ctx, AttachRequest{ContainerID: strings.Repeat("b", 64), Name: "two", Mode: "app"})
	if err != nil || a2.IP.String() != "10.9.0.2" {
		t.Fatalf("second attach: %+v %v", a2, err)
	}
	if err := s.Remove(ctx, "app"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("remove of a network in use: %v", err)
	}
	if ls := links(t, s); !slices.Contains(ls, "lo") {
		t.Fatalf("lo is gone: %v", ls)
	}
	if err := s.Remove(ctx, "bridge"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("remove of bridge: %v", err)
	}
	// The crash: drop the service; plant a stale veth and namespace.
	s.Close()
	if err := s.Detach(ctx, strings.Repeat("b", 64)); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("detach after close: %v", err)
	}
	h, err := openHost(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if err := h.ensureBridge("berth-stale", n.Gateway, n.Subnet); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(exec, "netns", "pool-stale")
	if err := createNetNS(stale); err != nil {
		t.Fatal(err)
	}
	// A daemon before 0098 kept a's endpoint in the durable store: the
	// reopen moves it into the state store, and keeps a's veth.
	aKey := endpointKey(strings.Repeat("a", 64), n.ID)
	aEp, err := metadata.Get[Endpoint](state, endpointsBucket, aKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := metadata.Put(db, endpointsBucket, aKey, aEp); err != nil {
		t.Fatal(err)
	}
	if err := metadata.Delete(state, endpointsBucket, aKey); err != nil {
		t.Fatal(err)
	}
	s = env.open(t, 1)
	if old, err := metadata.Keys(db, endpointsBucket); err != nil || len(old) > 0 {
		t.Fatalf("endpoints left in the durable store: %v %v", old, err)
	}
	ls := links(t, s)
	if slices.Contains(ls, "berth-stale") || !slices.Contains(ls, n.Bridge) || !slices.Contains(ls, vethName(strings.Repeat("a", 64), n.ID)) {
		t.Fatalf("links after reconcile: %v", ls)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale namespace kept: %v", err)
	}
	// The exits that happened meanwhile: a is gone, b still runs.
	if ids, err := s.Attached(); err != nil || len(ids) != 2 {
		t.Fatalf("attached after reconcile: %v %v", ids, err)
	}
	if err := s.Detach(ctx, strings.Repeat("a", 64)); err != nil {
		t.Fatal(err)
	}
	eps, _ := s.Endpoints(n.ID)
	if len(eps) != 1 || eps[0].ContainerName != "two" {
		t.Fatalf("endpoints after sweep: %+v", eps)
	}
	// The address a had is free again; b's is kept.
	a3, err := s.Attach(ctx, AttachRequest{ContainerID: strings.Repeat("c", 64), Name: "three", Mode: "app"})
	if err != nil || a3.IP.String() != "10.9.0.3" {
		t.Fatalf("after sweep: %+v %v", a3, err)
	}
	for _, id := range []string{"b", "c"} {
		if err := s.Detach(ctx, strings.Repeat(id, 64)); err != nil {
			t.Fatal(err)
		}
	}
	pruned, err := s.Prune(ctx, func(n *Network) bool { return n.Labels["a"] == "b" })
	if err != nil || len(pruned) != 1 || pruned[0] != "app" {
		t.Fatalf("prune: %v %v", pruned, err)
	}
	s.cleanup.Wait()
	for _, l := range links(t, s) {
		if strings.HasPrefix(l, vethPrefix) && !strings.HasPrefix(l, poolVethPrefix) || strings.HasPrefix(l, bridgePrefix+"-") {
			t.Errorf("left behind: %s", l)
		}
	}
}

// TestPooledAttach: a pool entry waits on the default bridge. A container
// that takes it gets its address, MAC, default route and a port that is up,
// with hairpin, on the bridge; a container on another network, or on a
// bridge made anew since, gets its entry moved to that bridge. A detach leaves no veth and no open file
// (an entry's netlink socket would keep its namespace alive).
func TestPooledAttach(t *testing.T) {
	ctx := context.Background()
	s := newServiceEnv(t).open(t, 1)
	app, err := s.Create(ctx, CreateOptions{Name: "app", Subnet: "10.9.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	full := func() {
		t.Helper()
		for i := 0; len(s.pool) < cap(s.pool); i++ {
			if i > 500 {
				t.Fatal("the pool does not refill")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	full()
	fds := openFDs(t)
	for _, c := range []struct {
		id, mode string
		remake   bool // the bridge deleted and made again while the entry waits
	}{{strings.Repeat("d", 64), "bridge", false}, {strings.Repeat("e", 64), "app", false}, {strings.Repeat("f", 64), "bridge", true}} {
		n, err := s.Get(c.mode)
		if err != nil {
			t.Fatal(err)
		}
		if c.remake {
			if err := s.host.deleteBridge(n.Bridge); err != nil {
				t.Fatal(err)
			}
			if err := s.host.ensureBridge(n.Bridge, n.Gateway, n.Subnet); err != nil {
				t.Fatal(err)
			}
		}
		att, err := s.Attach(ctx, AttachRequest{ContainerID: c.id, Name: "c", Mode: container.NetworkMode(c.mode)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(att.NetNSPath, "pool-") {
			t.Fatalf("%s: not from the pool: %s", c.mode, att.NetNSPath)
		}
		bridge, err := s.host.nl.LinkByName(n.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := s.ContainerEndpoints(c.id)
		if err != nil || len(eps) != 1 {
			t.Fatalf("%s: endpoints %v %v", c.mode, eps, err)
		}
		veth := eps[0].Veth
		if !strings.HasPrefix(veth, poolVethPrefix) {
			t.Fatalf("%s: the endpoint's veth %s is not the pool entry's", c.mode, veth)
		}
		hostEnd, err := s.host.nl.LinkByName(veth)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := s.host.nl.LinkGetProtinfo(hostEnd)
		if a := hostEnd.Attrs(); err != nil || a.MasterIndex != bridge.Attrs().Index || a.Flags&net.FlagUp == 0 || !pi.Hairpin {
			t.Fatalf("%s: host end master %d (bridge %d), flags %v, protinfo %+v %v", c.mode, a.MasterIndex, bridge.Attrs().Index, a.Flags, pi, err)
		}
		in, err := testutil.NetlinkAt(att.NetNSPath)
		if err != nil {
			t.Fatal(err)
		}
		eth0, err := in.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		addrs, _ := in.AddrList(eth0, netlink.FAMILY_V4)
		routes, _ := in.RouteList(eth0, netlink.FAMILY_V4)
		in.Close()
		if len(addrs) != 1 || addrs[0].IP.String() != att.IP.String() || eth0.Attrs().HardwareAddr.String() != macFor(att.IP).String() || eth0.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("%s: eth0 %+v with %v", c.mode, eth0.Attrs(), addrs)
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == n.Gateway.String()
		}) {
			t.Fatalf("%s: no default route via %s: %v", c.mode, n.Gateway, routes)
		}
		if err := s.Detach(ctx, c.id); err != nil {
			t.Fatal(err)
		}
		s.cleanup.Wait()
		if _, err := s.host.nl.LinkByName(veth); err == nil {
			t.Fatalf("%s: the veth is left", c.mode)
		}
		full()
		if now := openFDs(t); now != fds {
			t.Fatalf("%s: %d open files before the attach, %d after the detach", c.mode, fds, now)
		}
	}
	if err := s.Remove(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
