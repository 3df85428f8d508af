package network

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t testing.TB, name string, typ dnsmessage.Type) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 42, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testServer() *dnsServer {
	web := netip.MustParseAddr("10.1.0.2")
	return &dnsServer{internal: true, names: func(n string) ([]netip.Addr, bool) {
		if n == "web" || n == "www" {
			return []netip.Addr{web}, true
		}
		return nil, false
	}}
}

func TestDNSAnswers(t *testing.T) {
	d := testServer()
	for _, c := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		n     int
	}{
		{"web.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"WWW.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"web.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 0},
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeServerFailure, 0}, // internal: not forwarded
	} {
		resp := d.answer(context.Background(), query(t, c.name, c.typ), nil, false)
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.ID != 42 || !m.Response || m.RCode != c.rcode || len(m.Answers) != c.n {
			t.Errorf("%s %v: %+v", c.name, c.typ, m)
		}
		if c.n == 1 && m.Answers[0].Body.(*dnsmessage.AResource).A != [4]byte{10, 1, 0, 2} {
			t.Errorf("%s: wrong address %v", c.name, m.Answers[0])
		}
	}
}

// FuzzDNSQuery: the server reads packets from containers; none may crash it.
func FuzzDNSQuery(f *testing.F) {
	f.Add(query(f, "web.", dnsmessage.TypeA))
	f.Add(query(f, "x.", dnsmessage.TypeMX))
	f.Add([]byte{0, 1, 2})
	d := testServer()
	f.Fuzz(func(t *testing.T, b []byte) {
		d.answer(context.Background(), b, nil, false)
	})
}

// manyServer knows "many": 40 addresses, more than 512 bytes of answer.
func manyServer() *dnsServer {
	var ips []netip.Addr
	for i := range 40 {
		ips = append(ips, netip.AddrFrom4([4]byte{10, 1, 1, byte(i + 1)}))
	}
	return &dnsServer{internal: true, names: func(n string) ([]netip.Addr, bool) { return ips, n == "many" }}
}

func withEDNS(t *testing.T, q []byte, size uint16) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(q); err != nil {
		t.Fatal(err)
	}
	m.Additionals = append(m.Additionals, dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("."), Type: dnsmessage.TypeOPT, Class: dnsmessage.Class(size)},
		Body:   &dnsmessage.OPTResource{},
	})
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDNSTruncation: an answer too big for UDP comes back truncated (TC,
// no answers), whole over TCP, and whole over UDP when EDNS allows it.
func TestDNSTruncation(t *testing.T) {
	d := manyServer()
	ctx := context.Background()
	q := query(t, "many.", dnsmessage.TypeA)
	for _, c := range []struct {
		what    string
		q       []byte
		tcp     bool
		tc      bool
		answers int
	}{
		{"udp", q, false, true, 0},
		{"tcp", q, true, false, 40},
		{"udp edns 4096", withEDNS(t, q, 4096), false, false, 40},
		{"udp edns 512", withEDNS(t, q, 512), false, true, 0},
	} {
		var m dnsmessage.Message
		resp := d.answer(ctx, c.q, nil, c.tcp)
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if m.Truncated != c.tc || len(m.Answers) != c.answers || len(m.Questions) != 1 {
			t.Errorf("%s: TC %v, %d answers, %d questions", c.what, m.Truncated, len(m.Answers), len(m.Questions))
		}
		if !c.tcp && len(resp) > 512 && c.tc {
			t.Errorf("%s: %d bytes over UDP", c.what, len(resp))
		}
	}
}

// TestDNSOverTCP: a real TCP listener answers framed queries, several on
// one connection; close returns with a client still connected.
func TestDNSOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := manyServer()
	d.conn, d.tcp, d.done, d.tcpDone, d.conns = udp, ln, make(chan struct{}), make(chan struct{}), map[net.Conn]bool{}
	go d.serve(context.Background())
	go d.serveTCP(context.Background())
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		if err := writeTCPMessage(c, query(t, "many.", dnsmessage.TypeA)); err != nil {
			t.Fatal(err)
		}
		resp, err := readTCPMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(resp); err != nil || len(m.Answers) != 40 || m.Truncated {
			t.Fatalf("over TCP: %d answers, TC %v, %v", len(m.Answers), m.Truncated, err)
		}
	}
	// An idle client is connected: close must not wait for it.
	closed := make(chan struct{})
	go func() { d.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("close waits for an idle TCP client")
	}
}

// FuzzDNSTCP: the TCP framing reads whatever a container sends; it must
// neither panic nor read past a message, and what it reads answers or is
// dropped.
func FuzzDNSTCP(f *testing.F) {
	f.Add(append([]byte{0, byte(len(query(f, "web.", dnsmessage.TypeA)))}, query(f, "web.", dnsmessage.TypeA)...))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0})
	d := testServer()
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			q, err := readTCPMessage(r)
			if err != nil {
				return
			}
			if len(q) == 0 || len(q) > 0xffff {
				t.Fatalf("read a %d-byte message", len(q))
			}
			if resp := d.answer(context.Background(), q, nil, true); resp != nil {
				var buf bytes.Buffer
				if err := writeTCPMessage(&buf, resp); err != nil {
					t.Fatal(err)
				}
				if back, err := readTCPMessage(&buf); err != nil || !bytes.Equal(back, resp) {
					t.Fatalf("framing round trip: %v", err)
				}
			}
		}
	})
}
