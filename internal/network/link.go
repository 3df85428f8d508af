package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// host is the network namespace berth's bridges, veths and rules live in:
// the daemon's own, or (for tests, and `--host-netns`) one named by path.
type host struct {
	path string // empty: the daemon's own
	fd   int    // -1 for the daemon's own
	nl   *netlink.Handle
}

func openHost(path string) (*host, error) {
	h := &host{path: path, fd: -1}
	var err error
	if path == "" {
		h.nl, err = netlink.NewHandle()
	} else {
		if h.fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("open host network namespace %s: %w", path, err)
		}
		h.nl, err = netlink.NewHandleAt(netns.NsHandle(h.fd))
	}
	if err != nil {
		h.close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}

// handle opens another netlink handle on the host namespace. A handle's
// socket serves one request at a time, and deleting a veth keeps its
// request in the kernel for an RCU grace period: background work uses its
// own handle so that no container start queues behind it.
func (h *host) handle() (*netlink.Handle, error) {
	if h.fd < 0 {
		return netlink.NewHandle()
	}
	return netlink.NewHandleAt(netns.NsHandle(h.fd))
}

func (h *host) close() {
	if h.nl != nil {
		h.nl.Close()
	}
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
}

// do runs fn on a thread inside the host namespace: for what netlink does
// not cover (sysctls under /proc/sys/net, sockets).
func (h *host) do(fn func() error) error {
	if h.path == "" {
		return fn()
	}
	return inNetNS(h.path, fn)
}

// inNetNS runs fn on an OS thread switched into the network namespace at
// path. A thread that cannot switch back is not reused: it stays locked
// and dies with the goroutine.
func inNetNS(path string, fn func() error) error {
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
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
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

// sysctl writes a value under /proc/sys/net in the host namespace.
func (h *host) sysctl(key, value string) error {
	return h.do(func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}

// createNetNS makes a new network namespace bind-mounted at path, with its
// loopback up. The namespace outlives every process in it until
// removeNetNS: containers join it by path, and it survives the daemon.
func createNetNS(path string) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace file: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			removeNetNS(path)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its namespace afterwards; one that cannot
		// stays locked, and the runtime ends it with the goroutine (or, for
		// the main thread, never runs anything on it again).
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		err = unix.Mount(src, path, "", unix.MS_BIND, "")
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			err = fmt.Errorf("bind network namespace at %s: %w", path, err)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return err
	}
	nl, err := netlinkAt(path)
	if err != nil {
		return err
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback up in %s: %w", path, err)
	}
	return nil
}

// removeNetNS unmounts and deletes a namespace made by createNetNS; one
// that is gone is fine.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func netlinkAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}

// ensureBridge makes the bridge with the gateway address, up, and lets it
// carry traffic DNATed from 127.0.0.1 (route_localnet).
func (h *host) ensureBridge(name string, gw netip.Addr, subnet netip.Prefix) error {
	link, err := h.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: 1500, TxQLen: -1}}
		if err := h.nl.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = h.nl.LinkByName(name); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if link.Type() != "bridge" {
		// Never take over (and later delete) the host's eth0 or the like.
		return errdefs.Conflictf("bridge name %s is taken by a %s interface of the host", name, link.Type())
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if old, err := h.nl.AddrList(link, unix.AF_INET); err == nil {
		for _, a := range old {
			if !a.IPNet.IP.Equal(addr.IP) || a.IPNet.String() != addr.IPNet.String() {
				h.nl.AddrDel(link, &a) // a stale one of another subnet
			}
		}
	}
	if err := h.nl.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on bridge %s: %w", addr.IPNet, name, err)
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s up: %w", name, err)
	}
	return h.sysctl("net.ipv4.conf."+name+".route_localnet", "1")
}

// deleteBridge removes a bridge of berth's; an interface of that name that
// is not a bridge is left alone.
func (h *host) deleteBridge(name string) error {
	link, err := h.nl.LinkByName(name)
	if err != nil || link.Type() != "bridge" {
		return nil
	}
	return h.deleteLink(name)
}

// deleteLink removes an interface; one that is gone is fine.
func (h *host) deleteLink(name string) error { return deleteLinkWith(h.nl, name) }

func deleteLinkWith(nl *netlink.Handle, name string) error {
	link, err := nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := nl.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// links lists the host's interface names.
func (h *host) links() ([]string, error) {
	all, err := h.nl.LinkList()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for _, l := range all {
		out = append(out, l.Attrs().Name)
	}
	return out, nil
}

// routes lists the IPv4 prefixes the host routes to, for choosing subnets
// that do not clash; routes through berth's own bridges (berth0, berth-*)
// are left out: they are the store's, or stale ones it will replace.
func (h *host) routes() ([]netip.Prefix, error) {
	rs, err := h.nl.RouteList(nil, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	ours := map[int]bool{}
	if ls, err := h.nl.LinkList(); err == nil {
		for _, l := range ls {
			if strings.HasPrefix(l.Attrs().Name, bridgePrefix) && l.Type() == "bridge" {
				ours[l.Attrs().Index] = true
			}
		}
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil || ours[r.LinkIndex] {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		ones, _ := r.Dst.Mask.Size()
		if ok && ones > 0 {
			out = append(out, netip.PrefixFrom(ip, ones).Masked())
		}
	}
	return out, nil
}

// vethName is the host side of a container's interface on a network.
func vethName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + networkID))
	return vethPrefix + hex.EncodeToString(sum[:])[:12]
}

const vethPrefix = "bth"

// macFor derives a MAC address from the IP, as Docker does (02:42:<ip>).
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// plug connects the namespace at nsPath to bridge br: a veth pair whose
// host end is on the bridge and whose other end is ifname in the
// namespace, with ip/prefix and, when gw is valid, the default route.
func (h *host) plug(nsPath, br, veth, ifname string, ip netip.Addr, subnet netip.Prefix, gw netip.Addr) (err error) {
	bridge, err := h.nl.LinkByName(br)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", br, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: veth, MTU: 1500, MasterIndex: bridge.Attrs().Index},
		PeerName:  ifname, PeerNamespace: netlink.NsFd(ns), PeerHardwareAddr: macFor(ip), PeerMTU: 1500,
	}
	if err := h.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s: %w", veth, err)
	}
	defer func() {
		if err != nil {
			h.deleteLink(veth)
		}
	}()
	hostEnd, err := h.nl.LinkByName(veth)
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetHairpin(hostEnd, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", veth, err)
	}
	if err := h.nl.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("veth %s up: %w", veth, err)
	}
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer in.Close()
	peer, err := in.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s in the container: %w", ifname, err)
	}
	return configurePeer(in, peer, ifname, ip, subnet, gw)
}

// unplugIn removes interface ifname from the namespace at nsPath (its veth
// peer on the host goes with it).
func unplugIn(nsPath, ifname string) error {
	nl, err := netlinkAt(nsPath)
	if err != nil {
		return err
	}
	defer nl.Close()
	l, err := nl.LinkByName(ifname)
	if err != nil {
		return nil
	}
	return nl.LinkDel(l)
}
