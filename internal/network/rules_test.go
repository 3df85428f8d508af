package network

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestComputeRulesGolden(t *testing.T) {
	bridge := RuleNetwork{Bridge: "berth0", Subnet: netip.MustParsePrefix("172.18.0.0/16")}
	front := RuleNetwork{Bridge: "berth-0123abcde", Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	sealed := RuleNetwork{Bridge: "berth-9876fedcb", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Internal: true}
	cases := []struct {
		name string
		in   RuleInput
	}{
		{"empty.nft", RuleInput{}},
		{"default-bridge.nft", RuleInput{Networks: []RuleNetwork{bridge}}},
		{"published.nft", RuleInput{
			// Given out of order: the output is sorted.
			Networks: []RuleNetwork{sealed, front, bridge},
			Endpoints: []RuleEndpoint{
				{Container: "web", IP: netip.MustParseAddr("10.1.0.2"), Ports: []Mapping{
					{Proto: "udp", HostIP: netip.IPv4Unspecified(), HostPort: 5353, ContainerPort: 53},
					{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80},
				}},
				{Container: "db", IP: netip.MustParseAddr("172.18.0.2"), Ports: []Mapping{
					{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5432, ContainerPort: 5432},
				}},
			},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := ComputeRules(c.in)
			golden(t, c.name, rs.String())
			// Every rule compiles to expressions.
			for _, ch := range rs.Chains {
				for _, r := range ch.Rules {
					if _, err := ruleExprs(r); err != nil {
						t.Errorf("%s: %v", r, err)
					}
				}
			}
		})
	}
}

func TestComputeRulesIsolation(t *testing.T) {
	rs := ComputeRules(RuleInput{Networks: []RuleNetwork{
		{Bridge: "berth-a", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{Bridge: "berth-b", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Internal: true},
	}})
	var fwd, post []string
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			switch c.Name {
			case "forward":
				fwd = append(fwd, r.String())
			case "postrouting":
				post = append(post, r.String())
			}
		}
	}
	want := []string{
		`iifname "berth-a" oifname != "berth-a" oifname "berth*" drop`,
		`iifname != "berth*" oifname "berth-a" ct state new ct status != dnat drop`,
		`iifname "berth-b" oifname != "berth-b" drop`,
		`iifname != "berth-b" oifname "berth-b" drop`,
	}
	if diff := cmp.Diff(want, fwd); diff != "" {
		t.Errorf("forward (-want +got):\n%s", diff)
	}
	for _, r := range post {
		if r == `oifname != "berth-b" ip saddr 10.2.0.0/24 masquerade` {
			t.Errorf("an internal network is masqueraded out: %s", r)
		}
	}
}
