package integration

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// run does what `docker run` does through the client: create, attach,
// wait, start; it returns the output and the exit code.
func run(t *testing.T, c *client.Client, hc *container.HostConfig, image string, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := &container.Config{Image: image, Cmd: cmd, AttachStdout: true, AttachStderr: true}
	created, err := c.ContainerCreate(ctx, "", container.CreateRequest{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	conn, err := c.ContainerAttach(ctx, created.ID, client.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer conn.Close()
	cond := "next-exit"
	if hc != nil && hc.AutoRemove {
		cond = "removed"
	}
	results, errs := c.ContainerWait(ctx, created.ID, cond)
	if err := c.ContainerStart(ctx, created.ID); err != nil {
		t.Fatalf("start: %v", err)
	}
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, conn.Reader); err != nil {
		t.Fatalf("output: %v", err)
	}
	select {
	case r := <-results:
		return out.String(), errOut.String(), int(r.StatusCode)
	case err := <-errs:
		t.Fatalf("wait: %v", err)
	}
	return
}

func TestRunHello(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	out, _, code := run(t, d.Client, &container.HostConfig{AutoRemove: true}, "hello")
	if code != 0 || !strings.Contains(out, "Hello from berth!") {
		t.Fatalf("hello: exit %d, output %q", code, out)
	}
	list, err := d.Client.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil || len(list) != 0 {
		t.Fatalf("--rm left containers: %v %v", list, err)
	}
}

func TestExitCodesAndStreams(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	out, errOut, code := run(t, d.Client, nil, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A missing command fails the start, naming the command; the container
	// records exit code 127, which the docker CLI exits with.
	ctx := context.Background()
	created, err := d.Client.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"no-such-command"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Client.ContainerStart(ctx, created.ID)
	if err == nil || !strings.Contains(err.Error(), `"no-such-command": executable file not found in $PATH`) {
		t.Fatalf("start of a missing command: %v", err)
	}
	info, err := d.Client.ContainerInspect(ctx, created.ID)
	if err != nil || info.State.ExitCode != 127 || info.State.Running || !strings.Contains(info.State.Error, "no-such-command") {
		t.Fatalf("after the failed start: %+v %v", info.State, err)
	}
	assertNoMountsLeft(t, d)
}

func TestStopLogsAndRemove(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	c := d.Client
	created, err := c.ContainerCreate(ctx, "sleeper", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, "sleeper"); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, "sleeper"); !errors.Is(err, errdefs.ErrNotModified) {
		t.Fatalf("second start: %v, want not modified", err)
	}
	if err := c.ContainerRemove(ctx, "sleeper", false, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rm of a running container: %v, want conflict", err)
	}
	waitForLog(t, c, created.ID, "started")
	timeout := 10
	if err := c.ContainerStop(ctx, "sleeper", &timeout, ""); err != nil {
		t.Fatal(err)
	}
	info, err := c.ContainerInspect(ctx, "sleeper")
	if err != nil || info.State.Running || info.State.ExitCode != 0 {
		t.Fatalf("after stop: %+v %v", info.State, err)
	}
	waitForLog(t, c, created.ID, "bye")
	if err := c.ContainerRemove(ctx, "sleeper", false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerInspect(ctx, created.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("inspect after rm: %v", err)
	}
	assertNoMountsLeft(t, d)
}

// TestContainerOutlivesDaemon: kill -9 the daemon while a container runs;
// after a restart it is still running, its log kept growing, and stop works.
func TestContainerOutlivesDaemon(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	created, err := d.Client.ContainerCreate(ctx, "survivor", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client.ContainerStart(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, d.Client, created.ID, "tick 2\n")
	d.Kill()
	time.Sleep(300 * time.Millisecond) // the container keeps logging meanwhile
	d2 := testutil.RestartDaemon(t, d)
	info, err := d2.Client.ContainerInspect(ctx, created.ID)
	if err != nil || !info.State.Running {
		t.Fatalf("after the daemon's crash: %+v %v", info.State, err)
	}
	waitForLog(t, d2.Client, created.ID, "tick 10\n")
	if err := d2.Client.ContainerKill(ctx, created.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	res, errs := d2.Client.ContainerWait(ctx, created.ID, "not-running")
	select {
	case r := <-res:
		if r.StatusCode != 137 {
			t.Fatalf("exit %d after SIGKILL, want 137", r.StatusCode)
		}
	case err := <-errs:
		t.Fatal(err)
	}
	if err := d2.Client.ContainerRemove(ctx, created.ID, false, false); err != nil {
		t.Fatal(err)
	}
	assertNoMountsLeft(t, d2)
}

func loadBusybox(t *testing.T, d *testutil.Daemon) {
	t.Helper()
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
}

func waitForLog(t *testing.T, c *client.Client, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rc, err := c.ContainerLogs(context.Background(), id, client.LogsOptions{Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		stdcopy.StdCopy(&out, &out, rc)
		rc.Close()
		if strings.Contains(out.String(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s never showed %q; it has %q", id, want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertNoMountsLeft(t *testing.T, d *testutil.Daemon) {
	t.Helper()
	ms, err := testutil.ContainerMountsUnder(d.ExecRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) > 0 {
		t.Fatalf("mounts left under the exec root: %v", ms)
	}
}

// TestPrivilegedRuns: --privileged gets every capability the host has
// (this machine's root lacks CAP_SYS_RESOURCE, so "all" would fail).
func TestPrivilegedRuns(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	out, errOut, code := run(t, d.Client, &container.HostConfig{AutoRemove: true, Privileged: true}, "busybox", "grep", "CapEff", "/proc/self/status")
	if code != 0 || !strings.Contains(out, "CapEff:") {
		t.Fatalf("privileged: exit %d, %q %q", code, out, errOut)
	}
	if strings.Contains(out, "0000000000000000") {
		t.Fatalf("privileged container has no capabilities: %q", out)
	}
}

// TestAutoRemoveAfterDaemonKill: an --rm container's exit and removal
// are not stored as they happen (setTransient); its record says running
// until it is gone. One that exits while the daemon is dead must still be
// removed, whole, when the daemon comes back.
func TestAutoRemoveAfterDaemonKill(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	created, err := d.Client.ContainerCreate(ctx, "", container.CreateRequest{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo up; sleep 1"}},
		HostConfig: &container.HostConfig{AutoRemove: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client.ContainerStart(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, d.Client, created.ID, "up\n")
	d.Kill()
	time.Sleep(1500 * time.Millisecond) // it exits meanwhile
	d2 := testutil.RestartDaemon(t, d)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := d2.Client.ContainerInspect(ctx, created.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the --rm container is still there after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertNoMountsLeft(t, d2)
}
