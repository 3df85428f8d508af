package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// The less common container verbs through client/: archive both ways,
// changes, pause, stats, update, top, commit, export, disk usage.
func TestContainerExtrasAPI(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	ctx := context.Background()
	c := d.Client
	resp, err := c.ContainerCreate(ctx, "extras", container.CreateRequest{Config: &container.Config{
		Image: "busybox", Cmd: []string{"sh", "-c", "echo data > /tmp/f; ln -s / /tmp/root; echo ready; exec sleep 300"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	if err := c.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ContainerRemove(context.Background(), id, true, false) })
	waitForLog(t, c, id, "ready")

	st, err := c.ContainerStatPath(ctx, id, "/tmp/root")
	if err != nil || st.Name != "root" || st.LinkTarget != "/" || st.Mode&os.ModeSymlink == 0 {
		t.Fatalf("stat /tmp/root = %+v, %v", st, err)
	}
	if _, err := c.ContainerStatPath(ctx, id, "/nope"); errdefs.ClassOf(err) != errdefs.ErrNotFound {
		t.Fatalf("stat /nope: %v", err)
	}
	rc, st, err := c.CopyFromContainer(ctx, id, "/tmp/f")
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, rc)
	if files["f"] != "data\n" || st.Size != 5 {
		t.Fatalf("archive of /tmp/f: %q, stat %+v", files, st)
	}

	// In: a file; then entries that try to leave the directory, which are
	// refused or kept inside it.
	put := func(name, body string) error {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
		tw.Close()
		return c.CopyToContainer(ctx, id, "/tmp", &buf, client.CopyToContainerOptions{})
	}
	if err := put("in.txt", "hello"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../../escape.txt", "root/through-link"} {
		err := put(name, "x")
		t.Logf("PUT %s: %v", name, err)
		if err != nil && errdefs.ClassOf(err) != errdefs.ErrInvalid {
			t.Fatalf("PUT %s: %v", name, err)
		}
	}
	rc, _, err = c.CopyFromContainer(ctx, id, "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	files = readTar(t, rc)
	if files["tmp/in.txt"] != "hello" {
		t.Fatalf("after PUT, /tmp holds %v", keys(files))
	}
	for _, p := range []string{"/escape.txt", "/through-link"} {
		if _, err := c.ContainerStatPath(ctx, id, p); err == nil {
			t.Fatalf("%s: an entry left the extraction directory", p)
		}
	}
	if err := c.CopyToContainer(ctx, id, "/tmp/f", bytes.NewReader(nil), client.CopyToContainerOptions{}); errdefs.ClassOf(err) != errdefs.ErrInvalid {
		t.Fatalf("extract into a file: %v", err)
	}

	changes, err := c.ContainerChanges(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]container.ChangeType{"/tmp": container.ChangeModify, "/tmp/f": container.ChangeAdd, "/tmp/in.txt": container.ChangeAdd}
	for _, ch := range changes {
		if k, ok := want[ch.Path]; ok && k == ch.Kind {
			delete(want, ch.Path)
		}
	}
	if len(want) > 0 {
		t.Fatalf("changes lack %v: %+v", want, changes)
	}

	if err := c.ContainerPause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if in, _ := c.ContainerInspect(ctx, id); !in.State.Paused || in.State.Status != "paused" {
		t.Fatalf("after pause: %+v", in.State)
	}
	if err := c.ContainerPause(ctx, id); errdefs.ClassOf(err) != errdefs.ErrConflict {
		t.Fatalf("pause twice: %v", err)
	}
	if err := c.ContainerUnpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerUpdate(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 32 << 20}}); err != nil {
		t.Fatal(err)
	}
	stats, err := c.ContainerStatsOneShot(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	if stats.MemoryStats.Limit != 32<<20 || stats.MemoryStats.Usage == 0 || stats.PidsStats.Current != 1 || stats.CPUStats.CPUUsage.TotalUsage == 0 {
		t.Fatalf("stats: memory %+v pids %+v cpu %+v", stats.MemoryStats, stats.PidsStats, stats.CPUStats.CPUUsage)
	}
	if _, err := c.ContainerUpdate(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 1 << 20}}); errdefs.ClassOf(err) != errdefs.ErrInvalid {
		t.Fatalf("update below 6MB: %v", err)
	}
	top, err := c.ContainerTop(ctx, id, "")
	if err != nil || len(top.Processes) != 1 || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep 300") {
		t.Fatalf("top: %+v, %v", top, err)
	}

	img, err := c.ContainerCommit(ctx, id, client.CommitOptions{Reference: "committed:v1", Changes: []string{"LABEL from=commit"}, Pause: true})
	if err != nil || !strings.HasPrefix(img, "sha256:") {
		t.Fatalf("commit: %q, %v", img, err)
	}
	if _, err := c.ContainerCommit(ctx, id, client.CommitOptions{Changes: []string{"RUN true"}}); errdefs.ClassOf(err) != errdefs.ErrInvalid {
		t.Fatalf("commit with RUN: %v", err)
	}
	rc, err = c.ContainerExport(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	files = readTar(t, rc)
	if _, ok := files["bin/busybox"]; !ok || files["tmp/in.txt"] != "hello" {
		t.Fatalf("export: %d entries", len(files))
	}
	du, err := c.DiskUsage(ctx)
	if err != nil || len(du.Containers) != 1 || len(du.Images) < 2 || du.ContainerUsage == nil || du.ContainerUsage.ActiveCount != 1 {
		t.Fatalf("df: %+v, %v", du, err)
	}
}

// berth's own CLI for the same verbs: output shapes and exit codes.
func TestCLIExtras(t *testing.T) {
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	loadBusybox(t, d)
	must := func(args ...string) string { t.Helper(); return berthOK(t, d, args...) }
	must("run", "-d", "--name", "cli", "busybox", "sh", "-c", "echo x > /tmp/x; echo ready; exec sleep 300")
	waitForLog(t, d.Client, "cli", "ready")
	dir := t.TempDir()
	must("cp", "cli:/tmp/x", filepath.Join(dir, "x"))
	if b, _ := os.ReadFile(filepath.Join(dir, "x")); string(b) != "x\n" {
		t.Fatalf("cp out: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "y"), []byte("y\n"), 0o644)
	must("cp", filepath.Join(dir, "y"), "cli:/tmp/")
	if out := must("diff", "cli"); !strings.Contains(out, "A /tmp/y\n") {
		t.Fatalf("diff: %q", out)
	}
	if out := must("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "cli"); strings.TrimSpace(out) != "cli 1" {
		t.Fatalf("stats: %q", out)
	}
	if out := must("top", "cli"); !strings.Contains(out, "sleep 300") {
		t.Fatalf("top: %q", out)
	}
	must("pause", "cli")
	if out := must("ps", "--format", "{{.Status}}"); !strings.Contains(out, "(Paused)") {
		t.Fatalf("ps: %q", out)
	}
	must("unpause", "cli")
	must("update", "--cpus", "0.5", "cli")
	if out := must("inspect", "--format", "{{.HostConfig.NanoCPUs}}", "cli"); strings.TrimSpace(out) != "500000000" {
		t.Fatalf("after update: %q", out)
	}
	if out := must("commit", "-c", "CMD cat /tmp/y", "cli", "snap"); !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("commit: %q", out)
	}
	if out := must("run", "--rm", "snap"); out != "y\n" {
		t.Fatalf("run the commit: %q", out)
	}
	if out := must("system", "df"); !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Containers") {
		t.Fatalf("system df: %q", out)
	}
	if _, err := berth(t, d, "system", "prune"); err == nil {
		t.Fatal("system prune without --force must refuse")
	}
	must("rm", "-f", "cli")
	if out := must("system", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Fatalf("system prune: %q", out)
	}
}

func readTar(t *testing.T, r io.ReadCloser) map[string]string {
	t.Helper()
	defer r.Close()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = string(b)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
