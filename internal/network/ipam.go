package network

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/internal/errdefs"
)

// pools are where subnets come from when a network names none: Docker's
// default address pools, in its order. A pool overlapping a host route or
// another network is skipped, so berth never takes docker0's 172.17/16.
var pools = func() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}()

// chooseSubnet returns the first pool that overlaps none of taken.
func chooseSubnet(taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		if !slices.ContainsFunc(taken, p.Overlaps) {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(errNoPool)
}

type poolError struct{}

func (poolError) Error() string {
	return "all predefined address pools have been fully subnetted"
}

var errNoPool = poolError{}

// firstHost is the first usable address of p (the network address + 1).
func firstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocateIP picks the lowest free address of subnet (inside ipRange when
// set) that is not the network, broadcast or gateway address and not in
// used.
func allocateIP(subnet, ipRange netip.Prefix, gw netip.Addr, used map[netip.Addr]bool) (netip.Addr, error) {
	scope := subnet
	if ipRange.IsValid() {
		scope = ipRange
	}
	last := broadcast(subnet)
	for a := scope.Masked().Addr(); scope.Contains(a); a = a.Next() {
		if a == subnet.Masked().Addr() || a == last || a == gw || used[a] {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, errdefs.Unavailable(errNoAddress{subnet})
}

type errNoAddress struct{ subnet netip.Prefix }

func (e errNoAddress) Error() string {
	return "no available IPv4 addresses on network subnet " + e.subnet.String()
}

// checkIP validates a requested --ip on a network.
func checkIP(ip netip.Addr, subnet netip.Prefix, gw netip.Addr, used map[netip.Addr]bool) error {
	switch {
	case !ip.Is4():
		return errdefs.Invalidf("invalid IPv4 address %q", ip)
	case !subnet.Contains(ip):
		return errdefs.Invalidf("invalid IP address %s: not in the network's subnet %s", ip, subnet)
	case ip == subnet.Masked().Addr() || ip == broadcast(subnet) || ip == gw:
		return errdefs.Invalidf("invalid IP address %s: reserved on subnet %s", ip, subnet)
	case used[ip]:
		return errdefs.Conflictf("address %s is already in use on the network", ip)
	}
	return nil
}

// Port numbers -P and an empty host port take, as Docker's (the kernel's
// ephemeral range starts at 32768, Docker's at 49153).
const (
	ephemeralFirst = 49153
	ephemeralLast  = 60999
)

// portKey names a host port in use: protocol, address, number.
type portKey struct {
	proto string
	ip    netip.Addr // unspecified: every address
	port  uint16
}

// resolvePorts turns a container's port bindings (and, with publishAll,
// its exposed ports) into single-port mappings, choosing host ports where
// none or a range is given. inUse reports host ports taken by other
// containers; the ones chosen here are added to it.
func resolvePorts(bindings network.PortMap, exposed network.PortSet, publishAll bool, inUse map[portKey]bool) ([]Mapping, error) {
	all := map[network.Port][]network.PortBinding{}
	for p, b := range bindings {
		all[p] = b
	}
	if publishAll {
		for p := range exposed {
			if _, ok := all[p]; !ok {
				all[p] = []network.PortBinding{{}}
			}
		}
	}
	ports := make([]network.Port, 0, len(all))
	for p := range all {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b network.Port) int {
		return cmp.Or(cmp.Compare(a.Proto(), b.Proto()), cmp.Compare(a.Num(), b.Num()))
	})
	var out []Mapping
	for _, p := range ports {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" {
			return nil, errdefs.Invalidf("invalid port %s: protocol %q is not supported (tcp or udp)", p, proto)
		}
		binds := all[p]
		if len(binds) == 0 {
			binds = []network.PortBinding{{}}
		}
		for _, b := range binds {
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			if hostIP.Is6() {
				continue // IPv4 only: Docker's "::" default binding is skipped
			}
			first, last := uint16(ephemeralFirst), uint16(ephemeralLast)
			if b.HostPort != "" {
				lo, hi, ok := strings.Cut(b.HostPort, "-")
				f, err := strconv.ParseUint(lo, 10, 16)
				if err != nil || f == 0 {
					return nil, errdefs.Invalidf("invalid host port %q for %s", b.HostPort, p)
				}
				first, last = uint16(f), uint16(f)
				if ok {
					l, err := strconv.ParseUint(hi, 10, 16)
					if err != nil || uint16(l) < first {
						return nil, errdefs.Invalidf("invalid host port range %q for %s", b.HostPort, p)
					}
					last = uint16(l)
				}
			}
			chosen := uint16(0)
			for hp := uint32(first); hp <= uint32(last); hp++ {
				if !portTaken(inUse, proto, hostIP, uint16(hp)) {
					chosen = uint16(hp)
					break
				}
			}
			if chosen == 0 {
				if first == last {
					return nil, errdefs.Conflictf("Bind for %s:%d failed: port is already allocated", hostIP, first)
				}
				return nil, errdefs.Conflictf("no free host port in %d-%d for %s", first, last, p)
			}
			inUse[portKey{proto, hostIP, chosen}] = true
			out = append(out, Mapping{Proto: proto, HostIP: hostIP, HostPort: chosen, ContainerPort: p.Num()})
		}
	}
	return out, nil
}

// portTaken: a port bound on every address clashes with any binding of
// it, and the other way round.
func portTaken(inUse map[portKey]bool, proto string, ip netip.Addr, port uint16) bool {
	if inUse[portKey{proto, ip, port}] || inUse[portKey{proto, netip.IPv4Unspecified(), port}] {
		return true
	}
	if ip.IsUnspecified() {
		for k := range inUse {
			if k.proto == proto && k.port == port {
				return true
			}
		}
	}
	return false
}
