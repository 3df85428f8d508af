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

// TestDockerExecInteractiveTTY types into `docker exec -it` in a real
// terminal (tmux): the shell's prompt and echo come back, the terminal size
// is the pane's, and the shell's exit code is docker's.
func TestDockerExecInteractiveTTY(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	testutil.RequireFile(t, "/usr/bin/tmux", "tmux")
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--name", "ttyexec", "busybox", "sleep", "1000")

	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	session := fmt.Sprintf("berth-exec-tty-%d", os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-L", session}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := fmt.Sprintf("DOCKER_HOST=%s DOCKER_CONFIG=%s docker exec -it ttyexec sh; echo \"exit=$?\" > %s; sleep 30",
		d.Host, dir, status)
	tmux("new-session", "-d", "-s", session, "-x", "93", "-y", "27", "sh", "-c", script)
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
	waitScreen("/ #")
	tmux("send-keys", "-t", session, "echo sum=$((40+3)); stty size; cat /proc/1/comm", "Enter")
	waitScreen("sum=43")
	waitScreen("27 93")
	waitScreen("sleep")
	tmux("send-keys", "-t", session, "exit 6", "Enter")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(status)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if got := strings.TrimSpace(string(b)); got != "exit=6" {
				t.Fatalf("docker exec -it ended with %q, want exit=6", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker exec -it did not end after exit; the terminal shows:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, d, "rm", "-f", "ttyexec")
}
