package compat

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// TestDockerPullMirror: with --registry-mirror, a pull of a Docker Hub
// name (docker.io/library/...) is served by the mirrors, tried in order:
// the first is down, the second, a real docker-registry on loopback,
// holds the image. There is no internet here, so the pull working proves
// the mirror was used. docker info lists the mirrors.
func TestDockerPullMirror(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	reg, _ := startRegistry(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	t.Run("flags", func(t *testing.T) {
		pullThroughMirror(t, reg, dead, "--registry-mirror", "http://"+dead, "--registry-mirror", "http://"+reg+"/")
	})
	t.Run("config file", func(t *testing.T) {
		// daemon.json's registry-mirrors, as dockerd reads it.
		cfg := filepath.Join(t.TempDir(), "daemon.json")
		if err := os.WriteFile(cfg, []byte(`{"registry-mirrors": ["http://`+dead+`", "http://`+reg+`/"]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		pullThroughMirror(t, reg, dead, "--config-file", cfg)
	})
}

// pullThroughMirror starts a daemon with args naming the mirrors dead (down)
// and reg, and pulls a Hub name through them.
func pullThroughMirror(t *testing.T, reg, dead string, args ...string) {
	d := testutil.StartDaemon(t, args...)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	// The mirror holds library/mirrored:1, as a pull-through cache of the
	// Hub would.
	must(t, d, "tag", "busybox", reg+"/library/mirrored:1")
	must(t, d, "push", reg+"/library/mirrored:1")
	must(t, d, "rmi", reg+"/library/mirrored:1", "busybox")

	if out := must(t, d, "info", "--format", "{{json .RegistryConfig.Mirrors}}"); strings.TrimSpace(out) != `["http://`+dead+`/","http://`+reg+`/"]` {
		t.Fatalf("docker info mirrors: %s", out)
	}
	if out := must(t, d, "pull", "mirrored:1"); !strings.Contains(out, "Downloaded newer image for mirrored:1") {
		t.Fatalf("pull through the mirror printed:\n%s", out)
	}
	if out := must(t, d, "run", "--rm", "mirrored:1", "echo", "from-the-mirror"); strings.TrimSpace(out) != "from-the-mirror" {
		t.Fatalf("run printed %q", out)
	}
	if out := must(t, d, "image", "inspect", "--format", "{{.RepoDigests}}", "mirrored:1"); !strings.Contains(out, "mirrored@sha256:") {
		t.Fatalf("repo digests: %s", out)
	}
	// Not in the mirror: it falls back to the Hub, which is unreachable
	// here, and the pull fails naming nothing.
	if out, err := docker(t, d, "pull", "notmirrored:1"); err == nil {
		t.Fatalf("pull of an image no mirror has worked:\n%s", out)
	}
	// Only Hub names use mirrors: a pull from another registry does not.
	if out, err := docker(t, d, "pull", dead+"/library/mirrored:1"); err == nil {
		t.Fatalf("pull from a down registry worked:\n%s", out)
	}
}

// TestRegistryMirrorRefused: the daemon refuses a mirror it cannot use,
// with a message that says why, before it starts.
func TestRegistryMirrorRefused(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	for mirror, want := range map[string]string{
		"http://192.0.2.1:5000":      "plain HTTP",
		"ftp://mirror.example":       "unsupported scheme",
		"https://u:p@mirror.example": "username/password not allowed",
		"https://mirror.example/?x":  "query or fragment",
	} {
		out, err := exec.Command(testutil.BerthBinary(t), "daemon", "--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"),
			"-H", "unix://"+filepath.Join(root, "s.sock"), "--registry-mirror", mirror).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("daemon with mirror %s: %v, want an error saying %q:\n%s", mirror, err, want, out)
		}
	}
}
