package compat

import (
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// TestDockerRunInteractiveTTY types into `docker run -it` in a real
// terminal (tmux): the shell's prompt and echo come back, the terminal size
// is the pane's, and the exit code of the shell is docker's.
func TestDockerRunInteractiveTTY(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	tm := startTerminal(t, d, 97, 31, "run", "-it", "--rm", "busybox", "sh")
	tm.waitScreen("/ #") // busybox sh's root prompt
	tm.send("echo sum=$((40+2)); stty size")
	tm.waitScreen("sum=42")
	tm.waitScreen("31 97")
	tm.send("exit 5")
	if got := tm.exitStatus(); got != "exit=5" {
		t.Fatalf("docker run -it ended with %q, want exit=5", got)
	}
	if out := must(t, d, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left %q", out)
	}
}
