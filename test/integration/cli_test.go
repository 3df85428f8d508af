package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/testutil"
)

// berth runs berth's CLI against d and returns its combined output.
func berth(t *testing.T, d *testutil.Daemon, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testutil.BerthBinary(t), append([]string{"-H", d.Host}, args...)...).CombinedOutput()
	return string(out), err
}

// berthOK runs berth's CLI against d and fails the test if it fails.
func berthOK(t *testing.T, d *testutil.Daemon, args ...string) string {
	t.Helper()
	out, err := berth(t, d, args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCLILifecycleVerbs drives restart, rename, attach, info, events and
// container prune through berth's own CLI.
func TestCLILifecycleVerbs(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	must := func(args ...string) string { t.Helper(); return berthOK(t, d, args...) }
	start := time.Now().Unix()
	must("run", "-d", "--name", "one", "busybox", "sh", "-c", "echo started; exec sleep 300")
	must("rename", "one", "two")
	if out := must("inspect", "--format", "{{.Name}} {{.RestartCount}}", "two"); strings.TrimSpace(out) != "/two 0" {
		t.Fatalf("after rename: %q", out)
	}
	must("restart", "-t", "0", "two")
	if out := must("inspect", "--format", "{{.State.Running}}", "two"); strings.TrimSpace(out) != "true" {
		t.Fatalf("after restart: %q", out)
	}
	waitForLog(t, d.Client, "two", "started\nstarted\n")

	// attach follows the output until the container exits, with its code.
	ctx := context.Background()
	created, err := d.Client.ContainerCreate(ctx, "talker", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sh", "-c", "sleep 2; echo from-talker; exit 3"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client.ContainerStart(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	out, err := berth(t, d, "attach", "talker")
	if code := exitCodeOf(err); code != 3 || !strings.Contains(out, "from-talker") {
		t.Fatalf("attach: exit %d, output %q", code, out)
	}

	if out := must("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Driver}}"); !strings.HasPrefix(strings.TrimSpace(out), "2 1 ") {
		t.Fatalf("info: %q", out)
	}
	out = must("events", "--since", fmt.Sprint(start), "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "event=rename",
		"--format", "{{.Action}} {{index .Actor.Attributes \"name\"}}")
	if strings.TrimSpace(out) != "rename two" {
		t.Fatalf("events: %q", out)
	}
	if out, err := berth(t, d, "container", "prune"); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("prune without -f: %v %q", err, out)
	}
	if out := must("container", "prune", "-f"); !strings.Contains(out, created.ID) {
		t.Fatalf("prune: %q", out)
	}
	if out := must("container", "ls", "-q"); len(strings.Fields(out)) != 1 {
		t.Fatalf("container ls: %q", out)
	}
	must("rm", "-f", "two")
}

// exitCodeOf is the exit status of a failed command (0 for success).
func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
