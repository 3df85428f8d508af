package compat

import (
	"testing"

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

	tm := startTerminal(t, d, 93, 27, "exec", "-it", "ttyexec", "sh")
	tm.waitScreen("/ #")
	tm.send("echo sum=$((40+3)); stty size; cat /proc/1/comm")
	tm.waitScreen("sum=43")
	tm.waitScreen("27 93")
	tm.waitScreen("sleep")
	tm.send("exit 6")
	if got := tm.exitStatus(); got != "exit=6" {
		t.Fatalf("docker exec -it ended with %q, want exit=6", got)
	}
	must(t, d, "rm", "-f", "ttyexec")
}
