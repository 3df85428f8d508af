package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/testutil"
)

// TestKillDaemonDuringConcurrentRuns is issue 5's fault test: kill -9 the
// daemon while 50 containers are being created and started at once, 10
// rounds. After each restart no container whose create was answered is lost,
// every container that ran has its exit code and its log, and once all are
// removed no mount or cgroup is left.
func TestKillDaemonDuringConcurrentRuns(t *testing.T) {
	testutil.RequireRoot(t)
	const rounds, perRound = 10, 50
	if testing.Short() {
		t.Skip("long fault test; skipped with -short")
	}
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)

	var allIDs []string
	for round := 0; round < rounds; round++ {
		var (
			mu      sync.Mutex
			created = map[string]int{} // answered creates: ID → index
			wg      sync.WaitGroup
			started = make(chan error, perRound)
		)
		for i := 0; i < perRound; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				name := fmt.Sprintf("r%d-%d", round, i)
				cfg := &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", fmt.Sprintf("echo out-%s; sleep 0.%d; exit %d", name, i%3, i%5)}}
				res, err := d.Client.ContainerCreate(ctx, name, container.CreateRequest{Config: cfg})
				if err != nil {
					return // the daemon died under the request: allowed to be lost
				}
				mu.Lock()
				created[res.ID] = i
				mu.Unlock()
				// A start may fail as the daemon dies; one that fails
				// before the kill is a bug, reported with the round.
				started <- d.Client.ContainerStart(ctx, res.ID)
			}()
		}
		// Kill inside the burst, once a number of starts that grows with
		// the round was answered: creates, starts, running containers and
		// exits are all caught in flight.
		for n := 0; n < 3+round*4; n++ {
			select {
			case err := <-started:
				if err != nil {
					t.Errorf("round %d: a start before the kill failed: %v", round, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: only %d starts in 30s", round, n)
			}
		}
		d.Kill()
		wg.Wait()
		d = testutil.RestartDaemon(t, d)

		ctx := context.Background()
		mu.Lock()
		ran := 0
		for id, i := range created {
			allIDs = append(allIDs, id)
			info, err := d.Client.ContainerInspect(ctx, id)
			if err != nil {
				t.Fatalf("round %d: container %d (%s) was created before the kill and is lost: %v", round, i, id, err)
			}
			if info.State.Status == "created" {
				continue // its start never reached the monitor
			}
			ran++
			code := waitExit(t, d.Client, id)
			if code != i%5 {
				t.Errorf("round %d: %s exited %d, want %d", round, info.Name, code, i%5)
			}
			want := "out-" + strings.TrimPrefix(info.Name, "/") + "\n"
			if got := logsOf(t, d.Client, id); got != want {
				t.Errorf("round %d: log of %s = %q, want %q", round, info.Name, got, want)
			}
		}
		t.Logf("round %d: %d creates answered before the kill, %d of them ran", round, len(created), ran)
		mu.Unlock()
	}

	ctx := context.Background()
	list, err := d.Client.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, c := range list {
		before[c.ID] = string(c.State) + " " + c.Status
		if err := d.Client.ContainerRemove(ctx, c.ID, true, true); err != nil {
			t.Errorf("rm -f %s: %v", c.ID, err)
		}
	}
	assertNoMountsLeft(t, d)
	for _, id := range allIDs {
		if dirs := cgroupDirsOf(id); len(dirs) > 0 {
			t.Errorf("cgroups left for %s (%s): %v", id, before[id], dirs[0])
		}
	}
}

// waitExit waits for a container to stop and returns its exit code.
func waitExit(t *testing.T, c *client.Client, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, errs := c.ContainerWait(ctx, id, "not-running")
	select {
	case r := <-res:
		return int(r.StatusCode)
	case err := <-errs:
		t.Fatalf("wait %s: %v", id, err)
	}
	return -1
}

// logsOf is a container's whole log, stdout and stderr together.
func logsOf(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	rc, err := c.ContainerLogs(context.Background(), id, client.LogsOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

// cgroupDirsOf lists the cgroup directories, in every hierarchy, named
// after a container.
func cgroupDirsOf(id string) []string {
	var found []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/berth/" + id, "/sys/fs/cgroup/berth/" + id} {
		m, _ := filepath.Glob(pattern)
		for _, dir := range m {
			if _, err := os.Stat(dir); err == nil {
				found = append(found, dir)
			}
		}
	}
	return found
}
