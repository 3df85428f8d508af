package builtin

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/testutil"
)

// TestRunsUnderRunc runs the built-in image with the reference runtime
// (Debian's runc), from a bundle made of the image's rootfs and Cmd: the
// image is a working container image, not just a file that runs on the host.
func TestRunsUnderRunc(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFile(t, "/usr/sbin/runc", "runc")
	if testing.Short() {
		t.Skip("starts a container")
	}
	root := testutil.DataRoot(t)
	s := newStore(t, root, false)
	if _, err := Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	img, _, err := s.Resolve(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(root, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := s.PrepareRootfs(ctx, "runc", img.ID.String(), rootfs, image.RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	defer s.RemoveRootfs(ctx, "runc")
	defer s.UnmountRootfs(ctx, "runc", rootfs)

	gen := exec.Command("runc", "spec")
	gen.Dir = bundle
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	var spec map[string]any
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = img.Config.Config.Cmd
	proc["env"] = img.Config.Config.Env
	spec["root"] = map[string]any{"path": "rootfs", "readonly": true}
	raw, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	stateRoot := filepath.Join(root, "runc-state")
	id := "berth-builtin-hello-test"
	run := exec.Command("runc", "--root", stateRoot, "run", "--bundle", bundle, id)
	out, err := run.CombinedOutput()
	exec.Command("runc", "--root", stateRoot, "delete", "--force", id).Run()
	if err != nil || !strings.Contains(string(out), "Hello from berth!") {
		t.Fatalf("runc run hello: %v\n%s", err, out)
	}
}
