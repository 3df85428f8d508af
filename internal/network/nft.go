package network

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// applyRules makes berth's table hold exactly rs, in one netlink batch:
// the kernel applies all of it or none, and no packet sees a half-built
// table. With replace, the table is deleted and made anew (at daemon
// start, dropping chains of older versions); otherwise the chains stay
// and only their rules are flushed and re-added, which spares the kernel
// unregistering and registering hooks (an RCU grace period each).
// netnsFd < 0 means the caller's own network namespace.
func applyRules(netnsFd int, rs Ruleset, replace bool) error {
	conn, err := nftConn(netnsFd)
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}
	// Adding an existing table is a no-op, so the delete never fails on a
	// table that is not there.
	conn.AddTable(table)
	if replace {
		conn.DelTable(table)
		conn.AddTable(table)
	}
	for _, c := range rs.Chains {
		ch := &nftables.Chain{Name: c.Name, Table: table, Hooknum: hookOf(c.Hook), Priority: nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))}
		policy := nftables.ChainPolicyAccept
		ch.Policy = &policy
		if c.Type == "nat" {
			ch.Type = nftables.ChainTypeNAT
		} else {
			ch.Type = nftables.ChainTypeFilter
		}
		conn.AddChain(ch)
		if !replace {
			conn.FlushChain(ch)
		}
		for _, r := range c.Rules {
			exprs, err := ruleExprs(r)
			if err != nil {
				return err
			}
			rule := &nftables.Rule{Table: table, Chain: ch, Exprs: exprs}
			if r.Comment != "" {
				rule.UserData = commentUserData(r.Comment)
			}
			conn.AddRule(rule)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("apply nftables table %s: %w", TableName, err)
	}
	return nil
}

func nftConn(netnsFd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netnsFd >= 0 {
		// A closed (or reused) descriptor would silently make nftables act
		// on this process's own namespace, the machine's: refuse it.
		var st unix.Statfs_t
		if err := unix.Fstatfs(netnsFd, &st); err != nil || st.Type != unix.NSFS_MAGIC {
			return nil, fmt.Errorf("nftables: fd %d is not a network namespace (%v)", netnsFd, err)
		}
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return conn, nil
}

func hookOf(h string) *nftables.ChainHook {
	switch h {
	case "prerouting":
		return nftables.ChainHookPrerouting
	case "output":
		return nftables.ChainHookOutput
	case "postrouting":
		return nftables.ChainHookPostrouting
	case "input":
		return nftables.ChainHookInput
	}
	return nftables.ChainHookForward
}

// ruleExprs compiles a rule to nftables expressions, as nft would.
func ruleExprs(r Rule) ([]expr.Any, error) {
	var e []expr.Any
	for _, m := range r.IIF {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, ifnameCmp(m))
	}
	for _, m := range r.OIF {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, ifnameCmp(m))
	}
	if r.Src.IsValid() {
		e = append(e, prefixMatch(12, r.Src.Addr().As4(), r.Src.Bits())...)
	}
	if r.Dst.IsValid() {
		e = append(e, prefixMatch(16, r.Dst.Addr().As4(), r.Dst.Bits())...)
	}
	if r.DstLocal {
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)})
	}
	if r.Proto != "" {
		proto := byte(unix.IPPROTO_TCP)
		if r.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.DPort)})
	}
	if r.CtDNAT {
		e = append(e,
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, 0x20), Xor: make([]byte, 4)}, // IPS_DST_NAT
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.CtNew {
		e = append(e,
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.CtNoDNAT {
		e = append(e,
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, 0x20), Xor: make([]byte, 4)}, // IPS_DST_NAT
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)})
	}
	switch r.Action.Kind {
	case "accept":
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case "masquerade":
		e = append(e, &expr.Masq{})
	case "dnat":
		ip := r.Action.To.Addr().As4()
		e = append(e,
			&expr.Immediate{Register: 1, Data: ip[:]},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.Action.To.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	default:
		return nil, fmt.Errorf("nftables rule: unknown action %q", r.Action.Kind)
	}
	return e, nil
}

func ifnameCmp(m Ifname) *expr.Cmp {
	var data []byte
	if m.Prefix {
		data = []byte(m.Name)
	} else {
		data = make([]byte, unix.IFNAMSIZ)
		copy(data, m.Name)
	}
	op := expr.CmpOpEq
	if m.Not {
		op = expr.CmpOpNeq
	}
	return &expr.Cmp{Op: op, Register: 1, Data: data}
}

// prefixMatch loads the IPv4 address at offset in the network header and
// compares it with addr/bits.
func prefixMatch(offset uint32, addr [4]byte, bits int) []expr.Any {
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if bits < 32 {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-bits))
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
		for i := range addr {
			addr[i] &= mask[i]
		}
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]})
}

// commentUserData is a rule comment in the TLV form nft writes and shows.
func commentUserData(c string) []byte {
	if len(c) > 127 {
		c = c[:127]
	}
	b := []byte(c + "\x00")
	return append([]byte{0, byte(len(b))}, b...)
}

// dockerUserChain is the chain Docker's FORWARD jumps to first, kept for
// users' rules (Docker never flushes it).
const dockerUserChain = "DOCKER-USER"

// allowThroughDocker makes a host where Docker set the iptables FORWARD
// policy to DROP let berth's bridges forward: with that policy (and
// br_netfilter), even traffic between two containers on one berth bridge
// is dropped by Docker's base chain, whatever berth's own table says. It
// puts `-i berth+ -j ACCEPT` and `-o berth+ -j ACCEPT` at the top of
// DOCKER-USER, in exactly the form iptables-nft writes them, so Docker's
// iptables keeps reading its table. Berth's own forward chain still drops
// what must not pass (other networks, internal ones, unsolicited traffic
// from outside). Without a DOCKER-USER chain it does nothing.
func allowThroughDocker(netnsFd int) (bool, error) {
	conn, err := nftConn(netnsFd)
	if err != nil {
		return false, err
	}
	defer conn.CloseLasting()
	filter := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"}
	chain, err := conn.ListChain(filter, dockerUserChain)
	if err != nil || chain == nil {
		return false, nil // no Docker here
	}
	rules, err := conn.GetRules(filter, chain)
	if err != nil {
		return false, fmt.Errorf("list %s: %w", dockerUserChain, err)
	}
	want := []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME}
	have := map[expr.MetaKey]bool{}
	for _, r := range rules {
		if k, ok := isBridgeAccept(r); ok {
			have[k] = true
		}
	}
	added := false
	for _, k := range want {
		if have[k] {
			continue
		}
		conn.InsertRule(&nftables.Rule{Table: filter, Chain: chain, Exprs: []expr.Any{
			&expr.Meta{Key: k, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(bridgePrefix)},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
		added = true
	}
	if !added {
		return false, nil
	}
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("allow berth's bridges in %s: %w", dockerUserChain, err)
	}
	return true, nil
}

// isBridgeAccept recognises a rule allowThroughDocker wrote.
func isBridgeAccept(r *nftables.Rule) (expr.MetaKey, bool) {
	if len(r.Exprs) != 4 {
		return 0, false
	}
	m, ok1 := r.Exprs[0].(*expr.Meta)
	c, ok2 := r.Exprs[1].(*expr.Cmp)
	v, ok3 := r.Exprs[3].(*expr.Verdict)
	if !ok1 || !ok2 || !ok3 || v.Kind != expr.VerdictAccept || c.Op != expr.CmpOpEq || string(c.Data) != bridgePrefix {
		return 0, false
	}
	return m.Key, m.Key == expr.MetaKeyIIFNAME || m.Key == expr.MetaKeyOIFNAME
}
