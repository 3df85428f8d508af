package network

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/internal/errdefs"
)

func TestChooseSubnet(t *testing.T) {
	docker0 := netip.MustParsePrefix("172.17.0.0/16")
	got, err := chooseSubnet([]netip.Prefix{docker0, netip.MustParsePrefix("172.18.5.0/24")})
	if err != nil || got != netip.MustParsePrefix("172.19.0.0/16") {
		t.Fatalf("got %v %v, want 172.19.0.0/16 (172.17 is docker0's, 172.18 overlaps a route)", got, err)
	}
	if _, err := chooseSubnet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1")}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("everything taken: %v", err)
	}
}

func TestAllocateIP(t *testing.T) {
	subnet := netip.MustParsePrefix("10.0.0.0/29") // .1-.6 usable
	gw := netip.MustParseAddr("10.0.0.1")
	used := map[netip.Addr]bool{}
	var got []string
	for {
		ip, err := allocateIP(subnet, netip.Prefix{}, gw, used)
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatal(err)
			}
			break
		}
		used[ip] = true
		got = append(got, ip.String())
	}
	if diff := cmp.Diff([]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, got); diff != "" {
		t.Fatalf("allocation order (-want +got):\n%s", diff)
	}
	// An IP range narrows it.
	ip, err := allocateIP(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.0.128/25"), gw, nil)
	if err != nil || ip.String() != "10.0.0.128" {
		t.Fatalf("ip range: %v %v", ip, err)
	}
}

func TestCheckIP(t *testing.T) {
	subnet := netip.MustParsePrefix("10.0.0.0/24")
	gw := netip.MustParseAddr("10.0.0.1")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.0.0.5"): true}
	for _, c := range []struct {
		ip   string
		want error
	}{
		{"10.0.0.9", nil},
		{"10.0.1.9", errdefs.ErrInvalid},
		{"10.0.0.0", errdefs.ErrInvalid},
		{"10.0.0.255", errdefs.ErrInvalid},
		{"10.0.0.1", errdefs.ErrInvalid},
		{"10.0.0.5", errdefs.ErrConflict},
	} {
		err := checkIP(netip.MustParseAddr(c.ip), subnet, gw, used)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.ip, err, c.want)
		}
	}
}

func TestResolvePorts(t *testing.T) {
	p := network.MustParsePort
	any4 := netip.IPv4Unspecified()
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		name     string
		bindings network.PortMap
		exposed  network.PortSet
		all      bool
		inUse    map[portKey]bool
		want     []Mapping
		wantErr  error
	}{
		{name: "fixed tcp and udp", bindings: network.PortMap{p("80/tcp"): {{HostPort: "8080"}}, p("53/udp"): {{HostIP: lo, HostPort: "5353"}}},
			want: []Mapping{{"tcp", any4, 8080, 80}, {"udp", lo, 5353, 53}}},
		{name: "random host port", bindings: network.PortMap{p("80/tcp"): {{}}},
			inUse: map[portKey]bool{{"tcp", any4, ephemeralFirst}: true},
			want:  []Mapping{{"tcp", any4, ephemeralFirst + 1, 80}}},
		{name: "host range picks a free one", bindings: network.PortMap{p("80/tcp"): {{HostPort: "8000-8002"}}},
			inUse: map[portKey]bool{{"tcp", lo, 8000}: true},
			want:  []Mapping{{"tcp", any4, 8001, 80}}},
		{name: "-P publishes exposed ports", exposed: network.PortSet{p("443/tcp"): {}, p("80/tcp"): {}}, all: true,
			bindings: network.PortMap{p("80/tcp"): {{HostPort: "81"}}},
			want:     []Mapping{{"tcp", any4, 81, 80}, {"tcp", any4, ephemeralFirst, 443}}},
		{name: "ipv6 default binding skipped", bindings: network.PortMap{p("80/tcp"): {{HostPort: "80"}, {HostIP: netip.IPv6Unspecified(), HostPort: "80"}}},
			want: []Mapping{{"tcp", any4, 80, 80}}},
		{name: "taken", bindings: network.PortMap{p("80/tcp"): {{HostPort: "8080"}}},
			inUse: map[portKey]bool{{"tcp", any4, 8080}: true}, wantErr: errdefs.ErrConflict},
		{name: "udp does not clash with tcp", bindings: network.PortMap{p("80/udp"): {{HostPort: "8080"}}},
			inUse: map[portKey]bool{{"tcp", any4, 8080}: true}, want: []Mapping{{"udp", any4, 8080, 80}}},
		{name: "bad host port", bindings: network.PortMap{p("80/tcp"): {{HostPort: "http"}}}, wantErr: errdefs.ErrInvalid},
		{name: "sctp", bindings: network.PortMap{p("80/sctp"): {{HostPort: "80"}}}, wantErr: errdefs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inUse := c.inUse
			if inUse == nil {
				inUse = map[portKey]bool{}
			}
			got, err := resolvePorts(c.bindings, c.exposed, c.all, inUse)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
