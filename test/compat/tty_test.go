package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/testutil"
)

// TestDockerRunInteractiveTTY types into `docker run -it` in a real
// terminal (tmux): the shell's prompt and echo come back, the terminal size
// is the pane's, and the exit code of the shell is docker's.
func TestDockerRunInteractiveTTY(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	testutil.RequireFile(t, "/usr/bin/tmux", "tmux")
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))

	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	session := fmt.Sprintf("berth-tty-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", session}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := fmt.Sprintf("DOCKER_HOST=%s DOCKER_CONFIG=%s docker run -it --rm busybox sh; echo \"exit=$?\" > %s; sleep 30",
		d.Host, dir, status)
	tmux("new-session", "-d", "-s", session, "-x", "97", "-y", "31", "sh", "-c", script)
	t.Cleanup(func() { exec.Command("tmux", "-L", session, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", session) }
	waitScreen := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(screen(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q; it shows:\n%s", want, screen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitScreen("/ #") // busybox sh's root prompt (tmux trims the trailing space)
	tmux("send-keys", "-t", session, "echo sum=$((40+2)); stty size", "Enter")
	waitScreen("sum=42")
	waitScreen("31 97")
	tmux("send-keys", "-t", session, "exit 5", "Enter")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(status)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if got := strings.TrimSpace(string(b)); got != "exit=5" {
				t.Fatalf("docker run -it ended with %q, want exit=5", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker run -it did not end after exit; the terminal shows:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := must(t, d, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left %q", out)
	}
}
