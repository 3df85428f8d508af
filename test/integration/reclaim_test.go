package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/client"
	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/testutil"
)

// snapshotDirs counts the snapshot directories under the data root.
func snapshotDirs(t *testing.T, d *testutil.Daemon) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(d.DataRoot, "snapshots/*/snapshots/*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// waitGone waits until none of paths exists.
func waitGone(t *testing.T, what string, paths ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := ""
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				left = p
			}
		}
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is still there", what, left)
		}
	}
}

// TestRemovedContainersDiskIsReclaimed: a removal answers before the
// container's rootfs snapshot and directories are deleted (after it); they
// go all the same, for rm and for --rm. A daemon stopped between the
// deletion of a record and that of its disk deletes the disk at its next
// start (here the record is deleted by hand, the daemon down).
func TestRemovedContainersDiskIsReclaimed(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	base := snapshotDirs(t, d)
	dirs := func(id string) []string {
		return []string{filepath.Join(d.DataRoot, "containers", id), filepath.Join(d.ExecRoot, "containers", id)}
	}
	create := func(c *client.Client) string {
		t.Helper()
		created, err := c.ContainerCreate(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ContainerStart(ctx, created.ID); err != nil {
			t.Fatal(err)
		}
		return created.ID
	}

	id := create(d.Client)
	if _, _, code := run(t, d.Client, &container.HostConfig{AutoRemove: true}, "busybox", "true"); code != 0 {
		t.Fatalf("run --rm: exit %d", code)
	}
	if err := d.Client.ContainerRemove(ctx, id, true, false); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "after rm", dirs(id)...)
	for deadline := time.Now().Add(10 * time.Second); snapshotDirs(t, d) != base; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots left by removed containers", snapshotDirs(t, d)-base)
		}
	}

	// The record goes, the disk stays (as if the daemon died in between).
	orphan := create(d.Client)
	res, errs := d.Client.ContainerWait(ctx, orphan, "not-running")
	select {
	case <-res:
	case err := <-errs:
		t.Fatal(err)
	}
	d.Stop(t)
	db, err := metadata.Open(filepath.Join(d.DataRoot, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = berthc.MetadataStore{DB: db}.Delete(ctx, orphan)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if snapshotDirs(t, d) != base+1 {
		t.Fatalf("want the orphan's snapshot on disk before the restart, have %d more", snapshotDirs(t, d)-base)
	}
	d2 := testutil.RestartDaemon(t, d)
	waitGone(t, "after the restart", filepath.Join(d.DataRoot, "containers", orphan))
	if n := snapshotDirs(t, d2); n != base {
		t.Fatalf("%d snapshots of a removed container left after the restart", n-base)
	}
	if _, err := d2.Client.ContainerInspect(ctx, orphan); err == nil {
		t.Fatal("the container whose record was deleted is back")
	}
}

// TestFailedStartUnmountsRootfs: the rootfs is mounted beside the network
// attach; a start whose attach fails (a network that is gone) unmounts it
// once it is made, and the container can be started again on a good
// network.
func TestFailedStartUnmountsRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		created, err := d.Client.ContainerCreate(ctx, "", container.CreateRequest{
			Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
			HostConfig: &container.HostConfig{NetworkMode: "none", IpcMode: "shareable"},
		})
		if err != nil {
			t.Fatal(err)
		}
		// A container: mode naming one that does not exist fails after the
		// rootfs was started.
		bad, err := d.Client.ContainerCreate(ctx, "", container.CreateRequest{
			Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode("container:" + created.ID)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Client.ContainerStart(ctx, bad.ID); err == nil {
			t.Fatal("a container joining a stopped container's network started")
		}
		assertNoMountsLeft(t, d)
		if err := d.Client.ContainerRemove(ctx, bad.ID, true, false); err != nil {
			t.Fatal(err)
		}
		if err := d.Client.ContainerRemove(ctx, created.ID, true, false); err != nil {
			t.Fatal(err)
		}
	}
}
