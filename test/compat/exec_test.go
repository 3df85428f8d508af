package compat

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/testutil"
)

// TestDockerExec: `docker exec` runs commands in a running container: its
// output, stdin with -i, its exit code, -d, -e/-w/-u, and the error on a
// stopped container.
func TestDockerExec(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--name", "ex1", "busybox", "sleep", "1000")

	if out := must(t, d, "exec", "ex1", "echo", "hi"); out != "hi\n" {
		t.Errorf("docker exec c echo hi: %q", out)
	}
	cmd := exec.Command("docker", "exec", "-i", "ex1", "cat")
	cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
	cmd.Stdin = strings.NewReader("from stdin\n")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "from stdin\n" {
		t.Errorf("docker exec -i c cat: %v: %q", err, out)
	}
	// (stdout and stderr are separate streams: their order may change)
	out, err := docker(t, d, "exec", "ex1", "sh", "-c", "echo out; echo err >&2; exit 7")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Errorf("exit code: %v, output %q; want 7", err, out)
	}
	if out := must(t, d, "exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "ex1", "sh", "-c", "echo $FOO; pwd; id -un"); out != "bar\n/tmp\nnobody\n" {
		t.Errorf("docker exec -e -w -u: %q", out)
	}
	// The exec'd process is in the container: it sees the container's init as pid 1.
	if out := must(t, d, "exec", "ex1", "cat", "/proc/1/cmdline"); out != "sleep\x001000\x00" {
		t.Errorf("pid 1 seen by the exec: %q", out)
	}
	must(t, d, "exec", "-d", "ex1", "sh", "-c", "echo detached > /tmp/mark")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := docker(t, d, "exec", "ex1", "cat", "/tmp/mark")
		if out == "detached\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker exec -d: the command never ran (%q)", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := docker(t, d, "exec", "ex1", "nosuchcommand"); err == nil || !strings.Contains(out, "nosuchcommand") {
		t.Errorf("missing command: %v %q", err, out)
	}
	must(t, d, "stop", "-t", "0", "ex1")
	out, err = docker(t, d, "exec", "ex1", "true")
	if err == nil || !strings.Contains(out, "is not running") {
		t.Errorf("exec on a stopped container: %v %q", err, out)
	}
	out, err = docker(t, d, "exec", "nosuch", "true")
	if err == nil || !strings.Contains(strings.ToLower(out), "no such container") {
		t.Errorf("exec on a missing container: %v %q", err, out)
	}
	must(t, d, "rm", "ex1")
}
