package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// TestVolumesSurviveRestart: a volume and its content outlive the daemon.
func TestVolumesSurviveRestart(t *testing.T) {
	d := testutil.StartDaemon(t)
	ctx := context.Background()
	v, err := d.Client.VolumeCreate(ctx, volume.CreateRequest{Name: "keep", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Kill() // as a crash would
	d2 := testutil.RestartDaemon(t, d)
	got, err := d2.Client.VolumeInspect(ctx, "keep")
	if err != nil {
		t.Fatalf("volume lost across a daemon crash: %v", err)
	}
	if got.Labels["a"] != "b" {
		t.Fatalf("labels lost: %+v", got)
	}
	if b, err := os.ReadFile(filepath.Join(got.Mountpoint, "data")); err != nil || string(b) != "x" {
		t.Fatalf("content lost: %q %v", b, err)
	}
	if err := d2.Client.VolumeRemove(ctx, "keep", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Client.VolumeInspect(ctx, "keep"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after rm: %v", err)
	}
}
