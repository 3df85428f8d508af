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

// terminal is a real terminal: a tmux pane of a given size running one
// docker command against a test daemon.
type terminal struct {
	t       *testing.T
	session string
	status  string // where the command's exit status lands
}

// startTerminal runs `docker args...` against d in a cols×rows tmux pane.
func startTerminal(t *testing.T, d *testutil.Daemon, cols, rows int, args ...string) *terminal {
	t.Helper()
	testutil.RequireFile(t, "/usr/bin/tmux", "tmux")
	dir := t.TempDir()
	tm := &terminal{t: t, session: fmt.Sprintf("berth-tty-%d-%d", os.Getpid(), time.Now().UnixNano()), status: filepath.Join(dir, "status")}
	script := fmt.Sprintf("DOCKER_HOST=%s DOCKER_CONFIG=%s docker %s; echo \"exit=$?\" > %s; sleep 30",
		d.Host, dir, strings.Join(args, " "), tm.status)
	tm.tmux("new-session", "-d", "-s", tm.session, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), "sh", "-c", script)
	t.Cleanup(func() { exec.Command("tmux", "-L", tm.session, "kill-server").Run() })
	return tm
}

func (tm *terminal) tmux(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.session}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen is what the pane shows (tmux trims trailing spaces).
func (tm *terminal) screen() string { return tm.tmux("capture-pane", "-p", "-t", tm.session) }

// send types a line.
func (tm *terminal) send(line string) { tm.tmux("send-keys", "-t", tm.session, line, "Enter") }

// waitScreen waits until the pane shows want.
func (tm *terminal) waitScreen(want string) {
	tm.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(tm.screen(), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal never showed %q; it shows:\n%s", want, tm.screen())
		}
	}
}

// exitStatus waits for the docker command to end and returns "exit=N".
func (tm *terminal) exitStatus() string {
	tm.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(tm.status); err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the command did not end; the terminal shows:\n%s", tm.screen())
		}
	}
}
