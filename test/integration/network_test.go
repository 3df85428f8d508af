package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/testutil"
)

// runIn runs a busybox command to its end, like `docker run --rm`, with
// a network config; it returns the output and the exit code.
func runIn(t *testing.T, c *client.Client, hc *container.HostConfig, nc *network.NetworkingConfig, cmd ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if hc == nil {
		hc = &container.HostConfig{}
	}
	hc.AutoRemove = true
	modeFrom(hc, nc)
	created, err := c.ContainerCreate(ctx, "", container.CreateRequest{
		Config:     &container.Config{Image: "busybox", Cmd: cmd, AttachStdout: true, AttachStderr: true},
		HostConfig: hc, NetworkingConfig: nc,
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	conn, err := c.ContainerAttach(ctx, created.ID, client.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer conn.Close()
	results, errs := c.ContainerWait(ctx, created.ID, "removed")
	if err := c.ContainerStart(ctx, created.ID); err != nil {
		t.Fatalf("start %v: %v", cmd, err)
	}
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, conn.Reader)
	select {
	case r := <-results:
		return out.String(), int(r.StatusCode)
	case err := <-errs:
		t.Fatalf("wait: %v", err)
	}
	return "", -1
}

// startNamed starts a detached busybox container.
func startNamed(t *testing.T, c *client.Client, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) string {
	t.Helper()
	ctx := context.Background()
	cfg.Image = "busybox"
	if hc == nil {
		hc = &container.HostConfig{}
	}
	modeFrom(hc, nc)
	created, err := c.ContainerCreate(ctx, name, container.CreateRequest{Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := c.ContainerStart(ctx, created.ID); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return created.ID
}

// modeFrom sets the network mode to the one network of nc, as the docker
// CLI does for --network.
func modeFrom(hc *container.HostConfig, nc *network.NetworkingConfig) {
	if hc.NetworkMode == "" && nc != nil && len(nc.EndpointsConfig) == 1 {
		for name := range nc.EndpointsConfig {
			hc.NetworkMode = container.NetworkMode(name)
		}
	}
}

func onNetwork(name string, aliases ...string) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: {Aliases: aliases}}}
}

// dialIn gets /index.html over HTTP from addr, connecting from inside
// namespace ns.
func dialIn(t *testing.T, ns, addr string) (string, error) {
	t.Helper()
	var got string
	err := testutil.InNetNS(ns, func() error {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("GET /index.html HTTP/1.0\r\n\r\n")); err != nil {
			return err
		}
		b, err := io.ReadAll(conn)
		got = string(b)
		return err
	})
	return got, err
}

// secondHost links a new namespace to the daemon's host namespace with a
// veth: the host is 10.199.0.1, the second host 10.199.0.2.
func secondHost(t *testing.T, hostNS string) string {
	t.Helper()
	peer := testutil.TestNetNS(t)
	h, err := testutil.NetlinkAt(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p, err := testutil.NetlinkAt(peer)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fd, err := syscall.Open(peer, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		addr string
	}{{h, "uplink", "10.199.0.1/24"}, {p, "eth0", "10.199.0.2/24"}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(side.addr)
		if err := side.h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return peer
}

// hostLinks lists the interfaces of the daemon's host namespace.
func hostLinks(t *testing.T, d *testutil.Daemon) []string {
	t.Helper()
	h, err := testutil.NetlinkAt(d.HostNetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out
}

// assertNetworkClean checks that nothing of containers is left: no veth,
// no namespace, no endpoint (IPAM allocation), no DNAT rule; and that
// the bridges are exactly those of the networks that exist. The daemon's
// warm pool (at most 2 namespaces with a veth) may be there; veths and
// used pool namespaces are removed in the background, so it polls a while.
func assertNetworkClean(t *testing.T, d *testutil.Daemon, bridges ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		bad := networkLeftovers(t, d, bridges...)
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %s", strings.Join(bad, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func networkLeftovers(t *testing.T, d *testutil.Daemon, bridges ...string) []string {
	t.Helper()
	ctx := context.Background()
	var bad []string
	want := map[string]bool{"lo": true, "uplink": true}
	for _, b := range bridges {
		want[b] = true
	}
	pooled := 0
	for _, l := range hostLinks(t, d) {
		if strings.HasPrefix(l, "bthp") {
			pooled++
			continue
		}
		if !want[l] {
			bad = append(bad, "link "+l)
		}
		delete(want, l)
	}
	delete(want, "uplink")
	for b := range want {
		bad = append(bad, "missing bridge "+b)
	}
	if pooled > 2 {
		bad = append(bad, fmt.Sprintf("%d pool veths", pooled))
	}
	ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "netns"))
	poolNS := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "pool-") {
			bad = append(bad, "network namespace "+e.Name())
		} else {
			poolNS++
		}
	}
	if poolNS > 2 {
		bad = append(bad, fmt.Sprintf("%d pool namespaces", poolNS))
	}
	nets, err := d.Client.NetworkList(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		in, err := d.Client.NetworkInspect(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		for id, ep := range in.Containers {
			bad = append(bad, fmt.Sprintf("endpoint of %s (%s) on %s", ep.Name, id[:12], n.Name))
		}
	}
	rules := nftRules(t, d.HostNetNS)
	if strings.Contains(rules, "dnat to") {
		bad = append(bad, "DNAT rules left:\n"+rules)
	}
	return bad
}

// nftRules lists berth's table in ns with the nft tool, for assertions
// and failure messages only (berth itself never runs nft).
func nftRules(t *testing.T, ns string) string {
	t.Helper()
	testutil.RequireFile(t, "/usr/sbin/nft", "nftables")
	out, _ := exec.Command("nsenter", "--net="+ns, "nft", "list", "table", "ip", "berth").CombinedOutput()
	return string(out)
}

func TestNetworks(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	c := d.Client

	n1, err := c.NetworkCreate(ctx, network.CreateRequest{Name: "front", Labels: map[string]string{"tier": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NetworkCreate(ctx, network.CreateRequest{Name: "back", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("10.77.0.254")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NetworkCreate(ctx, network.CreateRequest{Name: "sealed", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NetworkCreate(ctx, network.CreateRequest{Name: "front"}); err == nil {
		t.Fatal("a second network named front was created")
	}
	peer := secondHost(t, d.HostNetNS)

	// A server on "front", known by its name and an alias.
	web := startNamed(t, c, "web", &container.Config{Cmd: []string{"sh", "-c", "echo hello-from-web > /tmp/index.html; httpd -f -p 80 -h /tmp"}, ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}},
		&container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}}, onNetwork("front", "www"))
	info, err := c.ContainerInspect(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	ep := info.NetworkSettings.Networks["front"]
	if ep == nil || !ep.IPAddress.IsValid() || ep.NetworkID != n1.ID || len(info.NetworkSettings.Ports[network.MustParsePort("80/tcp")]) != 1 {
		t.Fatalf("inspect NetworkSettings: %+v", info.NetworkSettings)
	}
	webIP := ep.IPAddress.String()

	t.Run("name and alias resolve on the same network", func(t *testing.T) {
		// The test busybox is linked statically against glibc, whose
		// getaddrinfo cannot load NSS modules in the container: names are
		// looked up with busybox's own nslookup, then used.
		for _, name := range []string{"web", "www", web[:12]} {
			out, code := runIn(t, c, nil, onNetwork("front"), "sh", "-c", fetchByName(name))
			if code != 0 || !strings.Contains(out, "hello-from-web") {
				t.Fatalf("wget %s: exit %d: %s", name, code, out)
			}
		}
		out, code := runIn(t, c, nil, onNetwork("front"), "cat", "/etc/resolv.conf")
		if code != 0 || !strings.Contains(out, "nameserver ") || strings.Contains(out, "10.255.") {
			t.Fatalf("resolv.conf: %s", out)
		}
	})
	t.Run("the embedded DNS server answers over TCP", func(t *testing.T) {
		gw := gatewayOf(t, c, n1.ID)
		var answer []byte
		err := testutil.InNetNS(d.HostNetNS, func() error {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(gw, "53"), 3*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			// One A query for "web", framed by its two-byte length.
			q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'e', 'b', 0, 0, 1, 0, 1}
			if _, err := conn.Write(append([]byte{0, byte(len(q))}, q...)); err != nil {
				return err
			}
			var l [2]byte
			if _, err := io.ReadFull(conn, l[:]); err != nil {
				return err
			}
			answer = make([]byte, int(l[0])<<8|int(l[1]))
			_, err = io.ReadFull(conn, answer)
			return err
		})
		ip := netip.MustParseAddr(webIP).As4()
		if err != nil || len(answer) < 12 || answer[0] != 0x12 || answer[1] != 0x34 || !bytes.Contains(answer, ip[:]) {
			t.Fatalf("TCP query for web to %s:53: %v %x", gw, err, answer)
		}
	})
	t.Run("other networks cannot reach it", func(t *testing.T) {
		out, _ := runIn(t, c, nil, onNetwork("back"), "sh", "-c", httpGet(webIP))
		if strings.Contains(out, "hello-from-web") {
			t.Fatalf("a container on back reached web on front: %s", out)
		}
		out, _ = runIn(t, c, nil, nil, "sh", "-c", httpGet(webIP))
		if strings.Contains(out, "hello-from-web") {
			t.Fatalf("a container on the default bridge reached web on front: %s", out)
		}
		out, code := runIn(t, c, nil, onNetwork("back"), "nslookup", "web")
		if code == 0 && strings.Contains(out, webIP) {
			t.Fatalf("back resolves front's container: %s", out)
		}
	})
	t.Run("published port on loopback and from a second host", func(t *testing.T) {
		for _, try := range []struct{ ns, addr string }{{d.HostNetNS, "127.0.0.1:8080"}, {d.HostNetNS, "10.199.0.1:8080"}, {peer, "10.199.0.1:8080"}} {
			got, err := dialIn(t, try.ns, try.addr)
			if err != nil || !strings.Contains(got, "hello-from-web") {
				t.Fatalf("%s from %s: %v %q\n%s", try.addr, try.ns, err, got, nftRules(t, d.HostNetNS))
			}
		}
		// Through the host's address from another container on the same
		// bridge (DNAT back into the bridge, masqueraded so the reply
		// returns through the host).
		if out, code := runIn(t, c, nil, onNetwork("front"), "sh", "-c", strings.Replace(httpGet("10.199.0.1"), " 80", " 8080", 1)); code != 0 || !strings.Contains(out, "hello-from-web") {
			t.Fatalf("published port through the host's address from the same bridge: exit %d %q", code, out)
		}
		// And from the container itself (hairpin to its own port: its
		// packets come back from its own address unless masqueraded).
		if out, code := execIn(t, c, web, "sh", "-c", strings.Replace(httpGet("10.199.0.1"), " 80", " 8080", 1)); code != 0 || !strings.Contains(out, "hello-from-web") {
			t.Fatalf("its own published port through the host's address: exit %d %q\n%s", code, out, nftRules(t, d.HostNetNS))
		}
		// The second host routes to the container's subnet through the
		// host: the unpublished container address itself stays closed.
		p, err := testutil.NetlinkAt(peer)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, dst, _ := net.ParseCIDR(webIP + "/32")
		if err := p.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("10.199.0.1")}); err != nil {
			t.Fatal(err)
		}
		if got, err := dialIn(t, peer, webIP+":80"); err == nil || strings.Contains(got, "hello-from-web") {
			t.Fatalf("the second host reached the container's own address, unpublished: %v %q", err, got)
		}
	})
	t.Run("udp, -P, a host port range, --dns and --dns-search", func(t *testing.T) {
		// busybox has no UDP server: a static Go echo, bind-mounted in.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "udpecho.go"), []byte(udpEcho), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "udpecho"), testutil.BuildStatic(t, filepath.Join(dir, "udpecho.go"), runtime.GOARCH), 0o755); err != nil {
			t.Fatal(err)
		}
		udp := network.MustParsePort("53/udp")
		id := startNamed(t, c, "echo", &container.Config{Cmd: []string{"/udpecho", ":53"}, ExposedPorts: network.PortSet{udp: {}}},
			&container.HostConfig{Binds: []string{filepath.Join(dir, "udpecho") + ":/udpecho:ro"}, PortBindings: network.PortMap{udp: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}}}}, nil)
		var reply string
		for i := 0; i < 50 && reply == ""; i++ {
			testutil.InNetNS(d.HostNetNS, func() error {
				conn, err := net.Dial("udp", "127.0.0.1:5353")
				if err != nil {
					return err
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
				conn.Write([]byte("ping-udp"))
				b := make([]byte, 64)
				if n, err := conn.Read(b); err == nil {
					reply = string(b[:n])
				}
				return nil
			})
		}
		if reply != "echo: ping-udp" {
			t.Fatalf("udp through 127.0.0.1:5353: %q\n%s", reply, nftRules(t, d.HostNetNS))
		}
		c.ContainerRemove(ctx, id, true, false)

		// -P: every exposed port on a random host port; a range: one of it.
		tcp := network.MustParsePort("80/tcp")
		serve := []string{"sh", "-c", "echo hello-from-p > /tmp/index.html; httpd -f -p 80 -h /tmp"}
		all := startNamed(t, c, "all", &container.Config{Cmd: serve, ExposedPorts: network.PortSet{tcp: {}}}, &container.HostConfig{PublishAllPorts: true}, nil)
		ranged := startNamed(t, c, "ranged", &container.Config{Cmd: serve}, &container.HostConfig{PortBindings: network.PortMap{tcp: {{HostPort: "18100-18110"}}}}, nil)
		for _, try := range []struct {
			id       string
			min, max int
		}{{all, 49153, 60999}, {ranged, 18100, 18110}} {
			info, err := c.ContainerInspect(ctx, try.id)
			if err != nil {
				t.Fatal(err)
			}
			b := info.NetworkSettings.Ports[tcp]
			if len(b) != 1 {
				t.Fatalf("%s: ports %+v", info.Name, info.NetworkSettings.Ports)
			}
			port, _ := strconv.Atoi(b[0].HostPort)
			if port < try.min || port > try.max {
				t.Fatalf("%s: host port %d not in %d-%d", info.Name, port, try.min, try.max)
			}
			var got string
			for i := 0; i < 50 && !strings.Contains(got, "hello-from-p"); i++ {
				got, _ = dialIn(t, d.HostNetNS, fmt.Sprintf("127.0.0.1:%d", port))
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(got, "hello-from-p") {
				t.Fatalf("%s on 127.0.0.1:%d: %q", info.Name, port, got)
			}
			c.ContainerRemove(ctx, try.id, true, false)
		}

		out, code := runIn(t, c, &container.HostConfig{DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, DNSSearch: []string{"example.org"}, DNSOptions: []string{"ndots:2"}}, nil, "cat", "/etc/resolv.conf")
		if code != 0 || !strings.Contains(out, "nameserver 10.0.0.53") || !strings.Contains(out, "search example.org") || !strings.Contains(out, "options ndots:2") {
			t.Fatalf("--dns, --dns-search, --dns-option: exit %d\n%s", code, out)
		}
	})
	t.Run("outbound goes out, internal does not", func(t *testing.T) {
		// The second host listens; containers try to reach it.
		ln := listenIn(t, peer, "10.199.0.2:9000")
		defer ln.Close()
		out, code := runIn(t, c, nil, onNetwork("back"), "sh", "-c", "echo hi | nc -w 3 10.199.0.2 9000")
		if code != 0 {
			t.Fatalf("back → second host: exit %d %s", code, out)
		}
		out, code = runIn(t, c, nil, onNetwork("sealed"), "sh", "-c", "echo hi | nc -w 2 10.199.0.2 9000")
		if code == 0 {
			t.Fatalf("an internal network reached the second host: %s", out)
		}
		out, _ = runIn(t, c, nil, onNetwork("sealed"), "ip", "route")
		if strings.Contains(out, "default") {
			t.Fatalf("internal network has a default route: %s", out)
		}
	})
	t.Run("static ip, none, container mode, links", func(t *testing.T) {
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"back": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.77.0.9")}}}}
		out, code := runIn(t, c, nil, nc, "ip", "-4", "addr", "show", "eth0")
		if code != 0 || !strings.Contains(out, "10.77.0.9/24") {
			t.Fatalf("--ip: %s", out)
		}
		out, _ = runIn(t, c, &container.HostConfig{NetworkMode: "none"}, nil, "ip", "link")
		if strings.Contains(out, "eth0") {
			t.Fatalf("--network none has eth0: %s", out)
		}
		out, code = runIn(t, c, &container.HostConfig{NetworkMode: "container:web"}, nil, "sh", "-c", httpGet("127.0.0.1"))
		if code != 0 || !strings.Contains(out, "hello-from-web") {
			t.Fatalf("--network container:web: exit %d %s", code, out)
		}
		startNamed(t, c, "db", &container.Config{Cmd: []string{"sleep", "300"}}, nil, nil)
		out, code = runIn(t, c, &container.HostConfig{Links: []string{"db:database"}, ExtraHosts: []string{"extra:10.1.2.3"}}, nil, "cat", "/etc/hosts")
		if code != 0 || !strings.Contains(out, "database db") || !strings.Contains(out, "10.1.2.3\textra") {
			t.Fatalf("--link/--add-host: %s", out)
		}
	})
	t.Run("connect and disconnect", func(t *testing.T) {
		if err := c.NetworkConnect(ctx, "back", "web", &network.EndpointSettings{Aliases: []string{"api"}}); err != nil {
			t.Fatal(err)
		}
		out, code := runIn(t, c, nil, onNetwork("back"), "sh", "-c", fetchByName("api"))
		if code != 0 || !strings.Contains(out, "hello-from-web") {
			t.Fatalf("after connect: exit %d %s", code, out)
		}
		if err := c.NetworkDisconnect(ctx, "back", "web", false); err != nil {
			t.Fatal(err)
		}
		if err := c.NetworkRemove(ctx, "front"); err == nil {
			t.Fatal("removed a network with a container on it")
		}
	})

	// rm -f of everything: nothing left; then the networks go too.
	for _, name := range []string{"web", "db"} {
		if err := c.ContainerRemove(ctx, name, true, false); err != nil {
			t.Fatal(err)
		}
	}
	assertNetworkClean(t, d, "berth0", bridgeOf(t, c, "front"), bridgeOf(t, c, "back"), bridgeOf(t, c, "sealed"))
	rep, err := c.NetworkPrune(ctx, map[string][]string{"label": {"tier=web"}})
	if err != nil || len(rep.NetworksDeleted) != 1 || rep.NetworksDeleted[0] != "front" {
		t.Fatalf("prune by label: %+v %v", rep, err)
	}
	for _, n := range []string{"back", "sealed"} {
		if err := c.NetworkRemove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.NetworkRemove(ctx, "bridge"); err == nil {
		t.Fatal("removed the predefined bridge network")
	}
	assertNetworkClean(t, d, "berth0")
	assertNoMountsLeft(t, d)
}

// fetchByName is a shell command that resolves name through the
// container's resolv.conf and fetches /index.html from it.
func fetchByName(name string) string {
	return `ip=$(nslookup -type=a ` + name + ` | awk '/^Address/ {a=$2} END {print a}'); echo "resolved $ip"; ` + httpGet("$ip")
}

// execIn runs cmd in the running container id and returns its output
// (stdout and stderr) and exit code.
func execIn(t *testing.T, c *client.Client, id string, cmd ...string) (string, int) {
	t.Helper()
	ctx := context.Background()
	ex, err := c.ExecCreate(ctx, id, container.ExecCreateRequest{AttachStdout: true, AttachStderr: true, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.ExecAttach(ctx, ex, container.ExecStartRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, conn.Reader); err != nil {
		t.Fatal(err)
	}
	info, err := c.ExecInspect(ctx, ex)
	if err != nil || info.ExitCode == nil {
		t.Fatalf("exec inspect: %v %+v", err, info)
	}
	return out.String(), *info.ExitCode
}

// httpGet is a shell command that gets /index.html from host with nc
// (busybox wget crashes in the container on glibc's service lookup).
func httpGet(host string) string {
	return `printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 ` + host + ` 80`
}

func bridgeOf(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	n, err := c.NetworkInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return "berth-" + n.ID[:9]
}

func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := testutil.InNetNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	return ln
}

// TestNetworkAfterDaemonKill: a container exits while the daemon is
// killed -9; the restarted daemon removes its veth, namespace, rules and
// address, and stale interfaces it finds.
func TestNetworkAfterDaemonKill(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	if _, err := d.Client.NetworkCreate(ctx, network.CreateRequest{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	id := startNamed(t, d.Client, "svc", &container.Config{Cmd: []string{"sleep", "300"}},
		&container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8081"}}}}, onNetwork("app"))
	info, err := d.Client.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	bridge := bridgeOf(t, d.Client, "app")
	d.Kill()
	if err := syscall.Kill(info.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A stale veth of berth's, as a crash mid-attach would leave.
	h, err := testutil.NetlinkAt(d.HostNetNS)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bth000000000000"}, PeerName: "bthpeer"}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	d = testutil.RestartDaemon(t, d)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := d.Client.ContainerInspect(ctx, id)
		if err == nil && !info.State.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exit while the daemon was down was not noticed: %+v %v", info.State, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Sweeping happens after the exit is applied; poll for it.
	for {
		in, err := d.Client.NetworkInspect(ctx, "app")
		if err == nil && len(in.Containers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint not released: %+v %v", in.Containers, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertNetworkClean(t, d, "berth0", bridge)
	if err := d.Client.ContainerRemove(ctx, id, true, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Client.NetworkRemove(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	assertNetworkClean(t, d, "berth0")
}

// gatewayOf is the gateway address of network id.
func gatewayOf(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	n, err := c.NetworkInspect(context.Background(), id)
	if err != nil || len(n.IPAM.Config) == 0 {
		t.Fatalf("inspect network %s: %v", id, err)
	}
	return n.IPAM.Config[0].Gateway.String()
}

// udpEcho answers each datagram with "echo: " and the datagram.
const udpEcho = `package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", os.Args[1])
	if err != nil {
		panic(err)
	}
	b := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(b)
		if err != nil {
			panic(err)
		}
		c.WriteTo(append([]byte("echo: "), b[:n]...), from)
	}
}
`
