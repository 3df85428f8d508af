package network

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/berth/berth/internal/log"
)

// dnsServer is the embedded DNS server of one user-defined network. It
// listens on the network's gateway address, port 53 (UDP), in the host
// namespace: containers' resolv.conf names it. It answers the names of
// the network's containers (name, aliases, short ID, hostname) and
// forwards everything else to the container's --dns servers or the
// host's resolvers; an internal network forwards nothing.
type dnsServer struct {
	svc      *Service
	netID    string
	internal bool
	conn     net.PacketConn
	done     chan struct{}
	// names finds the addresses of a name on the network (d.lookup).
	names func(name string) ([]netip.Addr, bool)
}

// startDNS starts the server of n. A server that cannot listen is logged
// and skipped: containers then resolve only external names through it
// failing, which the log explains. Preconditions: s.mu is held.
func (s *Service) startDNS(ctx context.Context, n *Network) {
	if d := s.dns[n.ID]; d != nil {
		return
	}
	var conn net.PacketConn
	err := s.host.do(func() error {
		var err error
		conn, err = net.ListenPacket("udp4", netip.AddrPortFrom(n.Gateway, 53).String())
		return err
	})
	if err != nil {
		log.From(ctx).Warn("embedded DNS server cannot listen; container names will not resolve", "network", n.Name, "err", err)
		return
	}
	d := &dnsServer{svc: s, netID: n.ID, internal: n.Internal, conn: conn, done: make(chan struct{})}
	d.names = d.lookup
	s.dns[n.ID] = d
	go d.serve(context.WithoutCancel(ctx))
}

func (d *dnsServer) close() {
	d.conn.Close()
	<-d.done
}

func (d *dnsServer) serve(ctx context.Context) {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if resp := d.answer(ctx, q, from); resp != nil {
				d.conn.WriteTo(resp, from)
			}
		}()
	}
}

// answer builds the reply to query q from client from; nil drops it.
func (d *dnsServer) answer(ctx context.Context, q []byte, from net.Addr) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(q)
	if err != nil || hdr.Response {
		return nil
	}
	question, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	ips, known := d.names(name)
	if !known {
		if d.internal {
			return reply(hdr, question, dnsmessage.RCodeServerFailure, nil)
		}
		return d.forward(ctx, q, from)
	}
	var answers []netip.Addr
	if question.Type == dnsmessage.TypeA || question.Type == dnsmessage.TypeALL {
		answers = ips
	}
	return reply(hdr, question, dnsmessage.RCodeSuccess, answers)
}

// lookup finds the addresses of name among the network's endpoints.
func (d *dnsServer) lookup(name string) ([]netip.Addr, bool) {
	eps, err := d.svc.Endpoints(d.netID)
	if err != nil {
		return nil, false
	}
	var out []netip.Addr
	for _, ep := range eps {
		for _, n := range ep.DNSNames {
			if strings.EqualFold(n, name) {
				out = append(out, ep.IP)
				break
			}
		}
	}
	return out, len(out) > 0
}

func reply(hdr dnsmessage.Header, q dnsmessage.Question, rcode dnsmessage.RCode, ips []netip.Addr) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true,
		RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	for _, ip := range ips {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 600}
		if b.AResource(rh, dnsmessage.AResource{A: ip.As4()}) != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// forward relays q to the client container's resolvers, or the host's.
func (d *dnsServer) forward(ctx context.Context, q []byte, from net.Addr) []byte {
	upstream := d.upstreamFor(from)
	for _, u := range upstream {
		c, err := net.DialTimeout("udp", net.JoinHostPort(u, "53"), 2*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(q); err == nil {
			buf := make([]byte, 4096)
			if n, err := c.Read(buf); err == nil {
				c.Close()
				return buf[:n]
			}
		}
		c.Close()
	}
	log.From(ctx).Debug("embedded DNS: no upstream answered", "upstream", upstream)
	return nil
}

func (d *dnsServer) upstreamFor(from net.Addr) []string {
	if ua, ok := from.(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(ua.IP.To4())
		if eps, err := d.svc.Endpoints(d.netID); err == nil {
			for _, ep := range eps {
				if ep.IP == ip && len(ep.Upstream) > 0 {
					return ep.Upstream
				}
			}
		}
	}
	return hostNameservers(d.svc.cfg.ResolvConf)
}

// hostNameservers reads the nameservers of a resolv.conf. The daemon runs
// in the host's namespace, so loopback resolvers are fine here.
func hostNameservers(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}
