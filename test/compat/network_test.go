package compat

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/testutil"
)

// TestDockerNetworks drives networks and published ports with the real
// docker CLI.
func TestDockerNetworks(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := docker(t, d, args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}
	run("load", "-i", testutil.BusyboxImage(t, "busybox:latest"))

	id := run("network", "create", "--subnet", "10.88.0.0/24", "--gateway", "10.88.0.1", "--label", "env=test", "appnet")
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if got := run("network", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", "label=env=test"); got != "appnet bridge" {
		t.Fatalf("ls = %q", got)
	}
	if got := run("network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin"); got != "bridge\nhost\nnone" {
		t.Fatalf("builtin networks = %q", got)
	}
	if got := run("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Internal}}", "appnet"); got != "10.88.0.0/24 10.88.0.1 false" {
		t.Fatalf("inspect = %q", got)
	}
	if out, err := docker(t, d, "network", "create", "appnet"); err == nil || !strings.Contains(out, "already exists") {
		t.Fatalf("duplicate create: %v %s", err, out)
	}

	run("run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "site", "--ip", "10.88.0.50",
		"-p", "127.0.0.1:18080:80", "-p", "18081:80", "busybox", "sh", "-c", "echo hi-there > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
	if got := run("inspect", "-f", "{{.NetworkSettings.Networks.appnet.IPAddress}} {{.NetworkSettings.Networks.appnet.Gateway}}", "web"); got != "10.88.0.50 10.88.0.1" {
		t.Fatalf("inspect NetworkSettings = %q", got)
	}
	if got := run("ps", "--format", "{{.Names}} {{.Ports}}", "--filter", "name=web"); !strings.Contains(got, "127.0.0.1:18080->80/tcp") || !strings.Contains(got, "0.0.0.0:18081->80/tcp") {
		t.Fatalf("docker ps ports = %q", got)
	}
	if got := run("port", "web", "80/tcp"); !strings.Contains(got, "127.0.0.1:18080") || !strings.Contains(got, "0.0.0.0:18081") {
		t.Fatalf("docker port = %q", got)
	}
	if got := run("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "appnet"); got != "web 10.88.0.50/24" {
		t.Fatalf("network inspect containers = %q", got)
	}
	for _, addr := range []string{"127.0.0.1:18080", "127.0.0.1:18081"} {
		var got string
		err := testutil.InNetNS(d.HostNetNS, func() error {
			conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte("GET /index.html HTTP/1.0\r\n\r\n"))
			b, err := io.ReadAll(conn)
			got = string(b)
			return err
		})
		if err != nil || !strings.Contains(got, "hi-there") {
			t.Fatalf("%s: %v %q", addr, err, got)
		}
	}
	out := run("run", "--rm", "--network", "appnet", "busybox", "nslookup", "-type=a", "site")
	if !strings.Contains(out, "10.88.0.50") {
		t.Fatalf("alias lookup: %s", out)
	}
	run("run", "-d", "--name", "other", "busybox", "sleep", "300")
	if got := run("inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}", "other"); !strings.Contains(got, ".") || strings.Count(got, " ") != 1 {
		t.Fatalf("legacy top-level IPAddress/Gateway = %q", got)
	}
	run("network", "connect", "--alias", "second", "appnet", "other")
	if got := run("inspect", "-f", "{{len .NetworkSettings.Networks}}", "other"); got != "2" {
		t.Fatalf("networks after connect = %q", got)
	}
	run("network", "disconnect", "appnet", "other")
	if out, err := docker(t, d, "network", "rm", "appnet"); err == nil || !strings.Contains(out, "active endpoints") {
		t.Fatalf("rm of a network in use: %v %s", err, out)
	}
	run("rm", "-f", "web", "other")
	if got := run("network", "prune", "-f"); !strings.Contains(got, "appnet") {
		t.Fatalf("prune = %q", got)
	}
	if got := run("network", "ls", "-q"); len(strings.Fields(got)) != 3 {
		t.Fatalf("networks left: %q", got)
	}
}
