package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// TestExecAPI drives exec through client/: attached output and exit code,
// stdin, a TTY, detached with its pid and exit code, resize, and the
// errors (404 no such container or exec, 409 not running).
func TestExecAPI(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	c := d.Client
	created, err := c.ContainerCreate(ctx, "execme", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sleep", "1000"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	execRun := func(req container.ExecCreateRequest, stdin string) (string, string, container.ExecInspectResponse) {
		t.Helper()
		id, err := c.ExecCreate(ctx, "execme", req)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecAttach(ctx, id, container.ExecStartRequest{Tty: req.Tty})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if req.AttachStdin {
			io.WriteString(conn.Conn, stdin)
			conn.CloseWrite()
		}
		var out, errb bytes.Buffer
		if req.Tty {
			io.Copy(&out, conn.Reader)
		} else if _, err := stdcopy.StdCopy(&out, &errb, conn.Reader); err != nil {
			t.Fatal(err)
		}
		info, err := c.ExecInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), info
	}
	out, errOut, info := execRun(container.ExecCreateRequest{AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}}, "")
	if out != "out\n" || errOut != "err\n" || info.Running || info.ExitCode == nil || *info.ExitCode != 5 {
		t.Errorf("attached: %q %q %+v", out, errOut, info)
	}
	out, _, _ = execRun(container.ExecCreateRequest{AttachStdin: true, AttachStdout: true, Cmd: []string{"cat"}}, "piped\n")
	if out != "piped\n" {
		t.Errorf("stdin: %q", out)
	}
	out, _, _ = execRun(container.ExecCreateRequest{Tty: true, AttachStdout: true, ConsoleSize: &[2]uint{25, 81},
		Cmd: []string{"sh", "-c", "tty; stty size"}}, "")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "25 81") {
		t.Errorf("tty: %q", out)
	}

	// Detached: running with a pid, then its exit code.
	id, err := c.ExecCreate(ctx, "execme", container.ExecCreateRequest{Cmd: []string{"sh", "-c", "sleep 0.3; exit 4"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ExecStartDetached(ctx, id); err != nil {
		t.Fatal(err)
	}
	if info, err := c.ExecInspect(ctx, id); err != nil || info.Pid == 0 {
		t.Errorf("detached exec: %v %+v", err, info)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.ExecInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Running {
			if info.ExitCode == nil || *info.ExitCode != 4 {
				t.Errorf("detached exit code: %+v", info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("detached exec never exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.ExecStartDetached(ctx, id); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("starting an exec twice: %v, want 409", err)
	}

	if _, err := c.ExecCreate(ctx, "nosuch", container.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("no such container: %v, want 404", err)
	}
	if _, err := c.ExecInspect(ctx, "nosuchexec"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("no such exec: %v, want 404", err)
	}
	if err := c.ContainerKill(ctx, "execme", ""); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c, "execme")
	_, err = c.ExecCreate(ctx, "execme", container.ExecCreateRequest{Cmd: []string{"true"}})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("stopped container: %v, want 409 not running", err)
	}
	c.ContainerRemove(ctx, "execme", true, false)
}

// TestCLIExec is berth exec: output, exit code, stdin, -e/-w/-u, -d.
func TestCLIExec(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	if out, err := berth(t, d, "run", "-d", "--name", "ex", "busybox", "sleep", "1000"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := berth(t, d, "exec", "-e", "A=b", "-w", "/tmp", "-u", "1000:1000", "ex", "sh", "-c", "echo $A; pwd; id -u"); err != nil || out != "b\n/tmp\n1000\n" {
		t.Errorf("berth exec: %v %q", err, out)
	}
	if _, err := berth(t, d, "exec", "ex", "sh", "-c", "exit 9"); exitCodeOf(err) != 9 {
		t.Errorf("berth exec exit code: %v, want 9", err)
	}
	if out, err := berth(t, d, "exec", "-d", "ex", "sleep", "5"); err != nil || out != "" {
		t.Errorf("berth exec -d: %v %q", err, out)
	}
	// Each exec starts its process from a thread that joined the
	// container's namespaces; none of them may be the main thread, or the
	// next exec would see the container's network namespace as the host's.
	for i := 0; i < 10; i++ {
		if out, err := berth(t, d, "exec", "ex", "true"); err != nil {
			t.Fatalf("exec %d: %v %s", i, err, out)
		}
	}
	d.CheckMainThreads(t)
	berth(t, d, "rm", "-f", "ex")
}

// TestHealthcheckRunsAsExec: a HEALTHCHECK runs in the container through
// exec: failing, the container turns unhealthy; once its test passes,
// healthy, with the probe's output in the log.
func TestHealthcheckRunsAsExec(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	c := d.Client
	created, err := c.ContainerCreate(ctx, "hc", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sleep", "1000"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "cat /tmp/ok"},
			Interval: 50 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(ctx, created.ID, true, false)
	if err := c.ContainerStart(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	var execID string
	waitHealth := func(want string) container.InspectResponse {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, err := c.ContainerInspect(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Health != nil && string(info.State.Health.Status) == want {
				return info
			}
			if time.Now().After(deadline) {
				var last []string
				if h := info.State.Health; h != nil {
					for _, l := range h.Log {
						last = append(last, fmt.Sprintf("exit %d %q", l.ExitCode, l.Output))
					}
				}
				ei, _ := c.ExecInspect(ctx, execID)
				t.Fatalf("health never %s: %+v, last checks %v; the writing exec: %+v", want, info.State.Health, last, ei)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitHealth("unhealthy")
	id, err := c.ExecCreate(ctx, created.ID, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo fine > /tmp/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	execID = id
	if err := c.ExecStartDetached(ctx, id); err != nil {
		t.Fatal(err)
	}
	info := waitHealth("healthy")
	logs := info.State.Health.Log
	if len(logs) == 0 || logs[len(logs)-1].ExitCode != 0 || logs[len(logs)-1].Output != "fine\n" {
		t.Errorf("health log: %+v", logs)
	}
}
