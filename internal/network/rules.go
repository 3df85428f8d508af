package network

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// TableName is berth's own nftables table (family ip). Nothing else of
// berth's lives outside it, so it never meets Docker's DOCKER chains.
const TableName = "berth"

// bridgePrefix is the name prefix every berth bridge shares: the default
// "berth0" and the user-defined "berth-<id>".
const bridgePrefix = "berth"

// Ruleset is the whole content of berth's table, as data.
type Ruleset struct {
	Chains []Chain
}

// Chain is a base chain of the table.
type Chain struct {
	Name     string
	Type     string // "nat" or "filter"
	Hook     string // prerouting, output, postrouting, forward
	Priority int
	Rules    []Rule
}

// Ifname matches an interface name: exactly, by prefix, or not.
type Ifname struct {
	Name   string
	Prefix bool // Name is a prefix ("berth*")
	Not    bool
}

func (m Ifname) String() string {
	op := ""
	if m.Not {
		op = "!= "
	}
	n := m.Name
	if m.Prefix {
		n += "*"
	}
	return op + `"` + n + `"`
}

// Action is what a rule does to the packets it matches.
type Action struct {
	Kind string         // accept, drop, masquerade, dnat
	To   netip.AddrPort // dnat target
}

// Rule is one rule: every set match must hold.
type Rule struct {
	IIF, OIF []Ifname
	Src, Dst netip.Prefix // zero: any
	DstLocal bool         // fib daddr type local
	Proto    string       // "tcp" or "udp" with DPort
	DPort    uint16
	CtDNAT   bool // ct status dnat
	CtNew    bool // ct state new
	CtNoDNAT bool // ct status != dnat
	Action   Action
	Comment  string
}

// Mapping is one published port, resolved: a single host port (ranges are
// expanded) to a container port.
type Mapping struct {
	Proto         string     // tcp or udp
	HostIP        netip.Addr // zero or unspecified: every local address
	HostPort      uint16
	ContainerPort uint16
}

// RuleInput is what the rules depend on: the bridge networks and the
// published ports of the endpoints on them.
type RuleInput struct {
	Networks  []RuleNetwork
	Endpoints []RuleEndpoint
}

// RuleNetwork is a bridge network as the rules see it.
type RuleNetwork struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// RuleEndpoint is a container's endpoint with its published ports.
type RuleEndpoint struct {
	Container string // for comments
	IP        netip.Addr
	Ports     []Mapping
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// ComputeRules is the pure function from networks and published ports to
// the table's content. Its output is ordered so equal inputs give equal
// rulesets (golden tests).
//
//   - prerouting/output DNAT a published port to the container: for traffic
//     from other hosts and for the host's own (127.0.0.1 included);
//   - postrouting masquerades what leaves a non-internal network, what the
//     host sends from 127.0.0.0/8 into a bridge (published ports on
//     loopback, with route_localnet on the bridge), and hairpin traffic;
//   - forward isolates networks from each other and internal networks
//     from everything, and drops new connections from outside to a
//     container that are not to a published port.
func ComputeRules(in RuleInput) Ruleset {
	nets := slices.Clone(in.Networks)
	slices.SortFunc(nets, func(a, b RuleNetwork) int { return cmp.Compare(a.Bridge, b.Bridge) })
	eps := slices.Clone(in.Endpoints)
	slices.SortFunc(eps, func(a, b RuleEndpoint) int { return a.IP.Compare(b.IP) })

	var dnat []Rule
	for _, ep := range eps {
		ports := slices.Clone(ep.Ports)
		slices.SortFunc(ports, func(a, b Mapping) int {
			return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.HostPort, b.HostPort), a.HostIP.Compare(b.HostIP))
		})
		for _, m := range ports {
			r := Rule{Proto: m.Proto, DPort: m.HostPort, Action: Action{Kind: "dnat", To: netip.AddrPortFrom(ep.IP, m.ContainerPort)}, Comment: ep.Container}
			if m.HostIP.IsValid() && !m.HostIP.IsUnspecified() {
				r.Dst = netip.PrefixFrom(m.HostIP, m.HostIP.BitLen())
			} else {
				r.DstLocal = true
			}
			dnat = append(dnat, r)
		}
	}
	var post, fwd []Rule
	// A container reaching its own published port through the host's
	// address comes back to itself from its own address, which its kernel
	// drops as a martian: masquerade it (as Docker's per-port rule). The
	// per-bridge hairpin rule below does not see it when the bridge calls
	// the IP hooks for bridged frames (br_netfilter): such a frame has no
	// input interface there.
	for _, ep := range eps {
		if len(ep.Ports) > 0 {
			self := netip.PrefixFrom(ep.IP, ep.IP.BitLen())
			post = append(post, Rule{Src: self, Dst: self, CtDNAT: true, Action: Action{Kind: "masquerade"}, Comment: ep.Container})
		}
	}
	for _, n := range nets {
		br := Ifname{Name: n.Bridge}
		notBr := Ifname{Name: n.Bridge, Not: true}
		if !n.Internal {
			post = append(post, Rule{Src: n.Subnet, OIF: []Ifname{notBr}, Action: Action{Kind: "masquerade"}})
		}
		post = append(post,
			Rule{OIF: []Ifname{br}, Src: loopback, Action: Action{Kind: "masquerade"}},
			Rule{IIF: []Ifname{br}, OIF: []Ifname{br}, CtDNAT: true, Action: Action{Kind: "masquerade"}})
		if n.Internal {
			fwd = append(fwd,
				Rule{IIF: []Ifname{br}, OIF: []Ifname{notBr}, Action: Action{Kind: "drop"}},
				Rule{OIF: []Ifname{br}, IIF: []Ifname{notBr}, Action: Action{Kind: "drop"}})
			continue
		}
		fwd = append(fwd,
			Rule{IIF: []Ifname{br}, OIF: []Ifname{notBr, {Name: bridgePrefix, Prefix: true}}, Action: Action{Kind: "drop"}},
			// No new connection from outside reaches a container unless it
			// was published (DNAT): containers are not routable services.
			Rule{IIF: []Ifname{{Name: bridgePrefix, Prefix: true, Not: true}}, OIF: []Ifname{br}, CtNew: true, CtNoDNAT: true, Action: Action{Kind: "drop"}})
	}
	return Ruleset{Chains: []Chain{
		{Name: "prerouting", Type: "nat", Hook: "prerouting", Priority: -100, Rules: dnat},
		{Name: "output", Type: "nat", Hook: "output", Priority: -100, Rules: dnat},
		{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: 100, Rules: post},
		{Name: "forward", Type: "filter", Hook: "forward", Priority: 0, Rules: fwd},
	}}
}

// String renders the ruleset in nft's syntax, as `nft list table ip berth`
// would show it.
func (rs Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", TableName)
	for i, c := range rs.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype %s hook %s priority %d; policy accept;\n", c.Name, c.Type, c.Hook, c.Priority)
		for _, r := range c.Rules {
			b.WriteString("\t\t" + r.String() + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (r Rule) String() string {
	var p []string
	for _, m := range r.IIF {
		p = append(p, "iifname "+m.String())
	}
	for _, m := range r.OIF {
		p = append(p, "oifname "+m.String())
	}
	if r.Src.IsValid() {
		p = append(p, "ip saddr "+prefixString(r.Src))
	}
	if r.Dst.IsValid() {
		p = append(p, "ip daddr "+prefixString(r.Dst))
	}
	if r.DstLocal {
		p = append(p, "fib daddr type local")
	}
	if r.Proto != "" {
		p = append(p, fmt.Sprintf("%s dport %d", r.Proto, r.DPort))
	}
	if r.CtDNAT {
		p = append(p, "ct status dnat")
	}
	if r.CtNew {
		p = append(p, "ct state new")
	}
	if r.CtNoDNAT {
		p = append(p, "ct status != dnat")
	}
	switch r.Action.Kind {
	case "dnat":
		p = append(p, "dnat to "+r.Action.To.String())
	default:
		p = append(p, r.Action.Kind)
	}
	if r.Comment != "" {
		p = append(p, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(p, " ")
}

func prefixString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}
