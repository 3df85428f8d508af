package network

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/berth/berth/internal/log"
)

// dnsServer is the embedded DNS server of one user-defined network. It
// listens on the network's gateway address, port 53, UDP and TCP (RFC 7766:
// a UDP answer that does not fit is truncated and the client retries over
// TCP), in the host namespace: containers' resolv.conf names it. It answers the names of
// the network's containers (name, aliases, short ID, hostname) and
// forwards everything else to the container's --dns servers or the
// host's resolvers; an internal network forwards nothing.
type dnsServer struct {
	svc      *Service
	netID    string
	internal bool
	conn     net.PacketConn
	tcp      net.Listener
	done     chan struct{} // closed when serve (UDP) returns
	tcpDone  chan struct{} // closed when serveTCP and its connections return
	mu       sync.Mutex    // guards conns
	conns    map[net.Conn]bool
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
	var (
		conn net.PacketConn
		tcp  net.Listener
	)
	addr := netip.AddrPortFrom(n.Gateway, 53).String()
	err := s.host.do(func() error {
		var err error
		if conn, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		if tcp, err = net.Listen("tcp4", addr); err != nil {
			conn.Close()
		}
		return err
	})
	if err != nil {
		log.From(ctx).Warn("embedded DNS server cannot listen; container names will not resolve", "network", n.Name, "err", err)
		return
	}
	d := &dnsServer{svc: s, netID: n.ID, internal: n.Internal, conn: conn, tcp: tcp,
		done: make(chan struct{}), tcpDone: make(chan struct{}), conns: map[net.Conn]bool{}}
	d.names = d.lookup
	s.dns[n.ID] = d
	go d.serve(context.WithoutCancel(ctx))
	go d.serveTCP(context.WithoutCancel(ctx))
}

// close stops both listeners and every TCP connection, and waits for them.
func (d *dnsServer) close() {
	d.conn.Close()
	d.tcp.Close()
	d.mu.Lock()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	<-d.done
	<-d.tcpDone
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
			if resp := d.answer(ctx, q, from, false); resp != nil {
				d.conn.WriteTo(resp, from)
			}
		}()
	}
}

// TCP limits: a client that sends nothing for tcpIdle is dropped (RFC 7766
// suggests seconds), and at most maxTCPConns are served at once, so idle
// or slow clients cannot pile up.
const (
	tcpIdle     = 10 * time.Second
	maxTCPConns = 64
)

// serveTCP accepts TCP clients until the listener closes.
func (d *dnsServer) serveTCP(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(d.tcpDone)
	}()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		if len(d.conns) >= maxTCPConns {
			d.mu.Unlock()
			c.Close()
			continue
		}
		d.conns[c] = true
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.serveConn(ctx, c)
			d.mu.Lock()
			delete(d.conns, c)
			d.mu.Unlock()
			c.Close()
		}()
	}
}

// serveConn answers the length-prefixed queries of one TCP client in turn.
func (d *dnsServer) serveConn(ctx context.Context, c net.Conn) {
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		q, err := readTCPMessage(c)
		if err != nil {
			return
		}
		resp := d.answer(ctx, q, c.RemoteAddr(), true)
		if resp == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if writeTCPMessage(c, resp) != nil {
			return
		}
	}
}

// readTCPMessage reads one DNS message framed by its two-byte length.
func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n == 0 {
		return nil, errors.New("empty DNS message")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeTCPMessage(w io.Writer, m []byte) error {
	if len(m) > 0xffff {
		return errors.New("DNS message too long for TCP")
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(m)), uint16(len(m)))
	_, err := w.Write(append(b, m...))
	return err
}

// answer builds the reply to query q from client from, over TCP or UDP;
// nil drops it.
func (d *dnsServer) answer(ctx context.Context, q []byte, from net.Addr, overTCP bool) []byte {
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
		return d.forward(ctx, q, from, overTCP)
	}
	var answers []netip.Addr
	if question.Type == dnsmessage.TypeA || question.Type == dnsmessage.TypeALL {
		answers = ips
	}
	resp := reply(hdr, question, dnsmessage.RCodeSuccess, answers)
	if !overTCP && len(resp) > udpLimit(&p) {
		// Too big for the client's UDP buffer: the header and question
		// with TC set, and the client asks again over TCP.
		hdr.Truncated = true
		resp = reply(hdr, question, dnsmessage.RCodeSuccess, nil)
	}
	return resp
}

// udpLimit is the largest UDP answer the client takes: 512 bytes, or what
// its EDNS(0) OPT record advertises. p is positioned after the question.
func udpLimit(p *dnsmessage.Parser) int {
	limit := 512
	if p.SkipAllQuestions() != nil || p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return limit
	}
	for {
		h, err := p.AdditionalHeader()
		if err != nil {
			return limit
		}
		if h.Type == dnsmessage.TypeOPT {
			if size := int(h.Class); size > limit {
				limit = min(size, 4096)
			}
			return limit
		}
		if p.SkipAdditional() != nil {
			return limit
		}
	}
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
		Truncated: hdr.Truncated, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true, RCode: rcode})
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

// forward relays q to the client container's resolvers, or the host's,
// over the transport the client used: a truncated UDP answer reaches the
// client as such, and its TCP retry goes upstream over TCP.
func (d *dnsServer) forward(ctx context.Context, q []byte, from net.Addr, overTCP bool) []byte {
	upstream := d.upstreamFor(from)
	network := "udp"
	if overTCP {
		network = "tcp"
	}
	for _, u := range upstream {
		if resp, err := exchange(network, net.JoinHostPort(u, "53"), q); err == nil {
			return resp
		}
	}
	log.From(ctx).Debug("embedded DNS: no upstream answered", "upstream", upstream)
	return nil
}

// exchange sends q to a server and returns its answer.
func exchange(network, addr string, q []byte) ([]byte, error) {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if network == "tcp" {
		if err := writeTCPMessage(c, q); err != nil {
			return nil, err
		}
		return readTCPMessage(c)
	}
	if _, err := c.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (d *dnsServer) upstreamFor(from net.Addr) []string {
	if ap, err := netip.ParseAddrPort(fmt.Sprint(from)); err == nil {
		ip := ap.Addr().Unmap()
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
