package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// TestVolumesAndBinds: -v with a named volume (made on first use, kept,
// shared by the next container), an anonymous one (removed with --rm), a
// read-only bind, --mount, and a volume a stopped container refers to
// cannot be removed.
func TestVolumesAndBinds(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	must := func(args ...string) string { t.Helper(); return berthOK(t, d, args...) }
	must("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := must("run", "--rm", "--mount", "type=volume,source=data,target=/v,readonly", "busybox", "cat", "/v/f"); out != "kept\n" {
		t.Fatalf("second container read %q", out)
	}
	if out := must("volume", "ls", "-q"); strings.TrimSpace(out) != "data" {
		t.Fatalf("volumes after --rm with an anonymous-free run: %q", out)
	}

	must("run", "--rm", "-v", "/scratch", "busybox", "touch", "/scratch/x")
	if out := must("volume", "ls", "-q"); strings.TrimSpace(out) != "data" {
		t.Fatalf("--rm left its anonymous volume: %q", out)
	}

	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644)
	if out := must("run", "--rm", "-v", host+":/h:ro", "busybox", "cat", "/h/in"); out != "from-host" {
		t.Fatalf("bind read %q", out)
	}
	if out, err := berth(t, d, "run", "--rm", "-v", host+":/h:ro", "busybox", "touch", "/h/new"); err == nil {
		t.Fatalf("wrote through a read-only bind: %q", out)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Fatal("a file appeared on the host through a read-only bind")
	}

	must("create", "--name", "keeper", "-v", "data:/data", "busybox", "true")
	if out := must("inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", "keeper"); strings.TrimSpace(out) != "volume data /data true" {
		t.Fatalf("inspect Mounts: %q", out)
	}
	if out, err := berth(t, d, "volume", "rm", "data"); err == nil || !strings.Contains(out, "in use") {
		t.Fatalf("removed a volume a container refers to: %v %q", err, out)
	}
	must("rm", "keeper")
	must("volume", "rm", "data")

	if out, err := berth(t, d, "run", "--rm", "-v", "bad name:/x", "busybox", "true"); err == nil || !strings.Contains(out, "invalid characters") {
		t.Fatalf("bad volume name: %v %q", err, out)
	}
	assertNoMountsLeft(t, d)
}

// TestInitAsPid1: --init runs berth's tiny init as pid 1, which passes the
// command's exit code through and reaps an orphan.
func TestInitAsPid1(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	out, err := berth(t, d, "run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; (sleep 0.2 &); exit 4")
	if code := exitCodeOf(err); code != 4 {
		t.Fatalf("exit %d (%v), want 4: %q", code, err, out)
	}
	if !strings.HasPrefix(out, "/sbin/docker-init -- sh") {
		t.Fatalf("pid 1 is %q", out)
	}
}
