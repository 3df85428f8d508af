package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/log"
)

// The warm pool. Making a network namespace and a veth pair costs the
// kernel several milliseconds, much of it under the rtnl lock that every
// other network change waits for. A few are made ahead of time, off any
// container's path, so a start only names, enslaves and addresses them.
//
//	pool entry:  netns <exec-root>/netns/pool-<hex>   lo up, eth0 down
//	             host end bthp<hex>: down, on the default bridge, hairpin
//	             a netlink handle inside the namespace, the two link indices
//	on attach:   bthp<hex> up (for another network: master and hairpin
//	             first), and the endpoint's veth from then on;
//	             eth0: MAC, address, up, default route
//
// A link must be down to be renamed, and a port that is down carries no
// traffic, so an entry can wait on the default bridge, where most
// containers go: their attach is seven netlink requests.
//
// A pool entry belongs to nobody: the next daemon start deletes any that a
// crash left (an entry not taken has no endpoint record).
const poolVethPrefix = vethPrefix + "p"

type pooledNS struct {
	path   string // the namespace's bind mount
	veth   string // host end
	index  int    // the host end's link index
	peer   int    // eth0's link index in the namespace
	bridge string // the bridge the host end is on ("" for none)
	brIdx  int    // and that bridge's index then
	in     *netlink.Handle
}

// close closes the entry's handle in its namespace; more than once is fine.
func (p pooledNS) close() {
	if p.in != nil {
		p.in.Close()
	}
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// makePooled makes one pool entry, with the filler's own handle nl, its
// host end on bridge br ("" for none).
func (s *Service) makePooled(nl *netlink.Handle, br string) (_ pooledNS, err error) {
	id := randHex(11)
	p := pooledNS{path: filepath.Join(s.cfg.ExecRoot, "netns", "pool-"+id), veth: poolVethPrefix + id}
	if err := createNetNS(p.path); err != nil {
		return p, err
	}
	defer func() {
		if err != nil {
			p.close()
			removeNetNS(p.path) // the veth goes with the namespace
		}
	}()
	ns, err := netns.GetFromPath(p.path)
	if err != nil {
		return p, err
	}
	defer ns.Close()
	attrs := netlink.LinkAttrs{Name: p.veth, MTU: 1500}
	if br != "" {
		if bridge, err := nl.LinkByName(br); err == nil {
			attrs.MasterIndex, p.bridge, p.brIdx = bridge.Attrs().Index, br, bridge.Attrs().Index
		}
	}
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns), PeerMTU: 1500}
	if err := nl.LinkAdd(v); err != nil {
		return p, fmt.Errorf("create veth %s: %w", p.veth, err)
	}
	hostEnd, err := nl.LinkByName(p.veth)
	if err != nil {
		return p, fmt.Errorf("pooled veth %s: %w", p.veth, err)
	}
	p.index = hostEnd.Attrs().Index
	if p.bridge != "" {
		// Hairpin: a container reaching its own published port through
		// the host's address gets the packet back on the port it came from.
		if err := nl.LinkSetHairpin(hostEnd, true); err != nil {
			return p, fmt.Errorf("hairpin on %s: %w", p.veth, err)
		}
	}
	if p.in, err = netlink.NewHandleAt(ns); err != nil {
		return p, fmt.Errorf("netlink in %s: %w", p.path, err)
	}
	peer, err := p.in.LinkByName("eth0")
	if err != nil {
		return p, fmt.Errorf("eth0 in the pooled namespace: %w", err)
	}
	p.peer = peer.Attrs().Index
	return p, nil
}

// dropPooled deletes a pool entry.
func (s *Service) dropPooled(p pooledNS) {
	p.close()
	s.host.deleteLink(p.veth)
	removeNetNS(p.path)
}

// takePooled returns a pool entry, if one is ready. The caller asks for
// another with refillPool once its attach is done: the filler's namespace
// and veth take the rtnl lock that the attach's requests wait for.
func (s *Service) takePooled() (pooledNS, bool) {
	select {
	case p := <-s.pool:
		return p, true
	default:
		return pooledNS{}, false
	}
}

// refillPool wakes the filler.
func (s *Service) refillPool() {
	select {
	case s.poolWake <- struct{}{}:
	default:
	}
}

// fillPool keeps the pool full until stop is closed; then it empties it.
func (s *Service) fillPool(ctx context.Context, stop <-chan struct{}) {
	defer close(s.poolDone)
	nl, err := s.host.handle()
	if err != nil {
		log.From(ctx).Warn("network namespace pool", "err", err)
		return
	}
	defer nl.Close()
	defer func() {
		for {
			select {
			case p := <-s.pool:
				s.dropPooled(p)
			default:
				return
			}
		}
	}()
	failures := 0
	for {
		for len(s.pool) < cap(s.pool) {
			select {
			case <-stop:
				return
			default:
			}
			p, err := s.makePooled(nl, DefaultBridge)
			if err != nil {
				failures++
				log.From(ctx).Warn("network namespace pool", "err", err)
				if failures > 3 {
					return // the slow path still works
				}
				break
			}
			failures = 0
			s.pool <- p
		}
		select {
		case <-stop:
			return
		case <-s.poolWake:
		case <-time.After(time.Minute):
		}
	}
}

// plugPooled wires a pool entry as ifname of a container on bridge br.
// The host end keeps its name: a rename costs the kernel ≈ 0.7 ms (sysfs
// and notifiers), more than the rest of the attach. The entry's handle
// stays open: its owner closes it.
func (h *host) plugPooled(p pooledNS, br, ifname string, ip netip.Addr, subnet netip.Prefix, gw netip.Addr) error {
	hostEnd := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: p.index, Name: p.veth}}
	// The bridge may have been deleted (its ports go with it) or made
	// anew since the entry was put on it: one lookup tells.
	bridge, err := h.nl.LinkByName(br)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", br, err)
	}
	if p.bridge != br || p.brIdx != bridge.Attrs().Index {
		if err := h.nl.LinkSetMasterByIndex(hostEnd, bridge.Attrs().Index); err != nil {
			return fmt.Errorf("veth %s on bridge %s: %w", p.veth, br, err)
		}
		if err := h.nl.LinkSetHairpin(hostEnd, true); err != nil {
			return fmt.Errorf("hairpin on %s: %w", p.veth, err)
		}
	}
	if err := h.nl.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("veth %s up: %w", p.veth, err)
	}
	peer := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: p.peer, Name: "eth0"}}
	if ifname != "eth0" {
		if err := p.in.LinkSetName(peer, ifname); err != nil {
			return err
		}
		peer.Name = ifname
	}
	if err := p.in.LinkSetHardwareAddr(peer, macFor(ip)); err != nil {
		return fmt.Errorf("MAC of %s: %w", ifname, err)
	}
	return configurePeer(p.in, peer, ifname, ip, subnet, gw)
}

// configurePeer addresses the container's end, brings it up and routes.
func configurePeer(in *netlink.Handle, peer netlink.Link, ifname string, ip netip.Addr, subnet netip.Prefix, gw netip.Addr) error {
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := in.AddrAdd(peer, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr.IPNet, ifname, err)
	}
	if err := in.LinkSetUp(peer); err != nil {
		return fmt.Errorf("%s up: %w", ifname, err)
	}
	if gw.IsValid() {
		if err := in.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice()}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}
