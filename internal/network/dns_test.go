package network

import (
	"context"
	"net/netip"
	"testing"

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
		resp := d.answer(context.Background(), query(t, c.name, c.typ), nil)
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
		d.answer(context.Background(), b, nil)
	})
}
