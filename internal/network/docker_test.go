package network

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

// Docker's FORWARD policy DROP (with br_netfilter) drops even traffic
// between two containers on one berth bridge: berth allows its bridges in
// DOCKER-USER, once, in the form iptables-nft reads.
func TestAllowThroughDocker(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.TestNetNS(t)
	fd, err := unix.Open(ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Closed after every other cleanup (they run last-in first-out): a
	// closed fd must never reach nftables, which would then act on the
	// test process's own namespace — the machine's.
	t.Cleanup(func() { unix.Close(fd) })
	if added, err := allowThroughDocker(fd); err != nil || added {
		t.Fatalf("without Docker: added %v, %v", added, err)
	}
	// Docker's shape: filter FORWARD (policy drop) jumping to DOCKER-USER.
	conn, err := nftConn(fd)
	if err != nil {
		t.Fatal(err)
	}
	filter := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"})
	drop := nftables.ChainPolicyDrop
	fwd := conn.AddChain(&nftables.Chain{Name: "FORWARD", Table: filter, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	conn.AddChain(&nftables.Chain{Name: dockerUserChain, Table: filter})
	conn.AddRule(&nftables.Rule{Table: filter, Chain: fwd, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictJump, Chain: dockerUserChain}}})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	conn.CloseLasting()
	t.Cleanup(func() {
		c, err := nftConn(fd)
		if err != nil {
			t.Error(err)
			return
		}
		c.DelTable(filter)
		if err := c.Flush(); err != nil {
			t.Error(err)
		}
		c.CloseLasting()
	})
	for i, want := range []bool{true, false} {
		if added, err := allowThroughDocker(fd); err != nil || added != want {
			t.Fatalf("call %d: added %v, %v; want %v", i, added, err, want)
		}
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		out, err := exec.Command("nsenter", "--net="+ns, "iptables", "-S", dockerUserChain).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-A DOCKER-USER -i berth+ -j ACCEPT") || !strings.Contains(string(out), "-A DOCKER-USER -o berth+ -j ACCEPT") {
			t.Fatalf("iptables does not read the rules: %v\n%s", err, out)
		}
	}
}

// A descriptor that is not a network namespace (closed, reused) must not
// reach nftables: it would act on the machine's own namespace.
func TestNftConnRefusesNonNamespaceFd(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := nftConn(int(f.Fd())); err == nil {
		t.Fatal("nftConn accepted /dev/null as a network namespace")
	}
	if _, err := nftConn(1 << 20); err == nil {
		t.Fatal("nftConn accepted a closed descriptor")
	}
}
