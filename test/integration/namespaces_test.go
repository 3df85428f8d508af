package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// TestSharedNamespaces: --pid container:<id> and --ipc container:<id>
// join the other container's namespaces, the IPC joiner sees the other's
// /dev/shm (it must be --ipc shareable), joining a stopped, missing or
// non-shareable container is refused, and the shareable /dev/shm mounted
// on the host is gone once the container is.
func TestSharedNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	c := d.Client
	ctx := context.Background()
	startNamed(t, c, "donor", &container.Config{Cmd: []string{"sh", "-c", "echo shared > /dev/shm/marker; exec sleep 1000"}},
		&container.HostConfig{IpcMode: "shareable"}, nil)
	startNamed(t, c, "private", &container.Config{Cmd: []string{"sleep", "1000"}}, nil, nil)
	donorIPC, code := execIn(t, c, "donor", "sh", "-c", "while [ ! -s /dev/shm/marker ]; do sleep 0.01; done; readlink /proc/self/ns/ipc")
	if code != 0 {
		t.Fatalf("readlink in donor: %d %q", code, donorIPC)
	}

	out, code := runIn(t, c, &container.HostConfig{PidMode: "container:donor"}, nil, "sh", "-c", "ps -o args | grep -x 'sleep 1000'")
	if code != 0 || strings.TrimSpace(out) != "sleep 1000" {
		t.Errorf("--pid container:donor: exit %d %q, want the donor's sleep in ps", code, out)
	}
	out, code = runIn(t, c, &container.HostConfig{IpcMode: "container:donor"}, nil, "sh", "-c", "cat /dev/shm/marker; readlink /proc/self/ns/ipc")
	if code != 0 || out != "shared\n"+donorIPC {
		t.Errorf("--ipc container:donor: exit %d %q, want the donor's marker and IPC namespace %q", code, out, donorIPC)
	}

	for _, try := range []struct {
		hc    container.HostConfig
		class *errdefs.Class
		msg   string
	}{
		{container.HostConfig{IpcMode: "container:private"}, errdefs.ErrConflict, "non-shareable"},
		{container.HostConfig{PidMode: "container:nope"}, errdefs.ErrNotFound, "No such container"},
	} {
		created, err := c.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &try.hc})
		if err != nil {
			t.Fatal(err)
		}
		err = c.ContainerStart(ctx, created.ID)
		if err == nil || !strings.Contains(err.Error(), try.msg) || !errors.Is(err, try.class) {
			t.Errorf("%+v: start: %v, want %v %q", try.hc, err, try.class, try.msg)
		}
	}
	zero := 0
	if err := c.ContainerStop(ctx, "private", &zero, ""); err != nil {
		t.Fatal(err)
	}
	created, err := c.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{PidMode: "container:private"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, created.ID); err == nil || !strings.Contains(err.Error(), "non running") {
		t.Errorf("joining a stopped container's PID namespace: %v", err)
	}

	if err := c.ContainerRemove(ctx, "donor", true, false); err != nil {
		t.Fatal(err)
	}
	assertNoMountsLeft(t, d) // the engine's warm network namespaces aside
}
