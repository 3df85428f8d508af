// Package compat drives the real docker CLI against a berth daemon and
// checks that it works as it does against Docker.
package compat

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/testutil"
)

// docker runs the docker CLI against d and returns its combined output.
func docker(t *testing.T, d *testutil.Daemon, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func requireDockerCLI(t *testing.T) {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		p = "/usr/local/bin/docker"
	}
	testutil.RequireFile(t, p, "docker.io (or the docker CLI)")
}

func TestDockerVersion(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	out, err := docker(t, d, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
	if err != nil {
		t.Fatalf("docker version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(out), api.MaxVersion+" linux"; got != want {
		t.Fatalf("docker version = %q, want %q", got, want)
	}
	out, err = docker(t, d, "version")
	if err != nil || !strings.Contains(out, "Server: berth") {
		t.Fatalf("docker version: %v\n%s", err, out)
	}
}

func TestDockerInfo(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	out, err := docker(t, d, "info", "--format", "{{.OSType}} {{.Driver}} {{.DockerRootDir}} {{.ServerVersion}}")
	if err != nil {
		t.Fatalf("docker info: %v\n%s", err, out)
	}
	f := strings.Fields(out)
	if len(f) != 4 || f[0] != "linux" || f[1] != "overlay2" || f[2] != d.DataRoot {
		t.Fatalf("docker info = %q", out)
	}
	if out, err := docker(t, d, "info"); err != nil || !strings.Contains(out, "Server Version") {
		t.Fatalf("plain docker info: %v\n%s", err, out)
	}
}

func TestDockerEventsWindow(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	// A window that has already closed: the stream must end by itself.
	out, err := docker(t, d, "events", "--since", "1", "--until", "2")
	if err != nil {
		t.Fatalf("docker events: %v\n%s", err, out)
	}
	if out, err := docker(t, d, "events", "--filter", "bogus=1", "--until", "1"); err == nil || !strings.Contains(out, "invalid filter 'bogus'") {
		t.Fatalf("bad filter: %v\n%s", err, out)
	}
}

// exitCode is the exit status of a failed docker command (0 for success).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 20s")
}
