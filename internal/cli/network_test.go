package cli

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/internal/errdefs"
)

func TestParsePublish(t *testing.T) {
	p := network.MustParsePort
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		in   []string
		want network.PortMap
		err  bool
	}{
		{in: []string{"80"}, want: network.PortMap{p("80/tcp"): {{}}}},
		{in: []string{"8080:80"}, want: network.PortMap{p("80/tcp"): {{HostPort: "8080"}}}},
		{in: []string{"127.0.0.1:8080:80/udp"}, want: network.PortMap{p("80/udp"): {{HostIP: lo, HostPort: "8080"}}}},
		{in: []string{"127.0.0.1::80"}, want: network.PortMap{p("80/tcp"): {{HostIP: lo}}}},
		{in: []string{"8000-8001:80-81"}, want: network.PortMap{p("80/tcp"): {{HostPort: "8000"}}, p("81/tcp"): {{HostPort: "8001"}}}},
		{in: []string{"8000-8010:80"}, want: network.PortMap{p("80/tcp"): {{HostPort: "8000-8010"}}}},
		{in: []string{"[::1]:8080:80"}, want: network.PortMap{p("80/tcp"): {{HostIP: netip.MustParseAddr("::1"), HostPort: "8080"}}}},
		{in: []string{"8000-8002:80-81"}, err: true},
		{in: []string{"x:80"}, err: true},
		{in: []string{"80/icmp"}, err: true},
		{in: []string{"1:2:3:4"}, err: true},
		{in: []string{"nothere:8080:80"}, err: true},
	}
	for _, c := range cases {
		exposed, got, err := parsePublish(c.in)
		if c.err {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("%v: err %v, want invalid", c.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%v (-want +got):\n%s", c.in, diff)
		}
		if len(exposed) != len(got) {
			t.Errorf("%v: exposed %v", c.in, exposed)
		}
	}
}
