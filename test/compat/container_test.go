package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// must runs the docker CLI against d and fails the test if it fails.
func must(t *testing.T, d *testutil.Daemon, args ...string) string {
	t.Helper()
	out, err := docker(t, d, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestDockerRunHello(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	if out := must(t, d, "run", "--rm", "hello"); !strings.Contains(out, "Hello from berth!") {
		t.Fatalf("docker run --rm hello printed %q", out)
	}
	if out := must(t, d, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left %q", out)
	}
	if out := must(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != "hello:latest" {
		t.Fatalf("images = %q", out)
	}
}

func TestDockerContainerVerbs(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	archive := testutil.BusyboxImage(t, "busybox:latest")
	if out := must(t, d, "load", "-i", archive); !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("docker load printed %q", out)
	}
	out, err := docker(t, d, "run", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 7")
	if exit := exitCode(err); exit != 7 || !strings.Contains(out, "to-out") || !strings.Contains(out, "to-err") {
		t.Fatalf("docker run: exit %d (%v), output %q", exit, err, out)
	}
	_, err = docker(t, d, "run", "--rm", "busybox", "no-such-command")
	if exit := exitCode(err); exit != 127 {
		t.Fatalf("missing command: exit %d, want 127", exit)
	}
	id := strings.TrimSpace(must(t, d, "run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello-log; exec sleep 300"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if out := must(t, d, "ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(strings.TrimSpace(out), "web Up") {
		t.Fatalf("ps = %q", out)
	}
	if out := must(t, d, "inspect", "--format", "{{.State.Running}} {{.Name}} {{.Config.Image}}", "web"); strings.TrimSpace(out) != "true /web busybox" {
		t.Fatalf("inspect = %q", out)
	}
	waitFor(t, func() bool { out, _ := docker(t, d, "logs", "web"); return strings.Contains(out, "hello-log") })
	must(t, d, "stop", "-t", "1", "web")
	if out := must(t, d, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"); !strings.Contains(out, "web") {
		t.Fatalf("ps -a status=exited = %q", out)
	}
	must(t, d, "rename", "web", "web2")
	must(t, d, "rm", "web2")
	if out, err := docker(t, d, "rm", "web2"); err == nil || !strings.Contains(out, "No such container: web2") {
		t.Fatalf("rm of a missing container: %v %q", err, out)
	}
	if out := must(t, d, "container", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("container prune = %q", out)
	}
	if ms, _ := testutil.ContainerMountsUnder(d.ExecRoot); len(ms) > 0 {
		t.Fatalf("mounts left: %v", ms)
	}
}

func TestDockerSaveLoadRoundTrip(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "tag", "busybox", "mybox:v1")
	saved := filepath.Join(t.TempDir(), "saved.tar")
	must(t, d, "save", "-o", saved, "mybox:v1")
	if fi, err := os.Stat(saved); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("saved archive: %v", err)
	}
	must(t, d, "rmi", "mybox:v1")
	d2 := testutil.StartDaemon(t)
	if out := must(t, d2, "load", "-i", saved); !strings.Contains(out, "mybox:v1") {
		t.Fatalf("load into a second daemon: %q", out)
	}
	if out := must(t, d2, "run", "--rm", "mybox:v1", "echo", "round-trip"); strings.TrimSpace(out) != "round-trip" {
		t.Fatalf("run of the reloaded image: %q", out)
	}
}
