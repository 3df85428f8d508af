package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/snapshot/testsuite"
	"github.com/berth/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestOverlay(t *testing.T) {
	testsuite.RunTestSuite(t, "overlay", func(root string) (snapshot.Snapshotter, error) {
		return snapshot.NewOverlay(root)
	})
}

func TestNative(t *testing.T) {
	testsuite.RunTestSuite(t, "native", func(root string) (snapshot.Snapshotter, error) {
		return snapshot.NewNative(root)
	})
}

func TestOverlaySupported(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.DataRoot(t)
	if err := snapshot.OverlaySupported(root); err != nil {
		t.Fatalf("overlay not supported on the test machine: %v", err)
	}
	s, name, err := snapshot.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if name != "overlayfs" {
		t.Fatalf("New chose %s", name)
	}
}

// TestMountVolatile: an active overlay snapshot mounted volatile carries
// the option, keeps what is written, and mounts volatile again after a
// clean unmount (the marker overlay leaves is removed), as a restarted
// --rm container needs.
func TestMountVolatile(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.DataRoot(t)
	s, err := snapshot.NewOverlay(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Prepare(ctx, "base", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "base-layer", "base"); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.Prepare(ctx, "ctr", "base-layer")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "mnt")
	os.MkdirAll(target, 0o755)
	for round := 0; round < 2; round++ {
		if err := snapshot.MountVolatile(mounts, target); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		var line string
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, " "+target+" ") {
				line = l
			}
		}
		if !strings.Contains(line, "volatile") {
			t.Errorf("round %d: mount lacks volatile: %q", round, line)
		}
		if err := os.WriteFile(filepath.Join(target, "f"), []byte{byte('a' + round)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := snapshot.Unmount(target); err != nil {
			t.Fatal(err)
		}
	}
	dir, _, _ := s.ApplyDir("ctr")
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "b" {
		t.Fatalf("upper directory holds %q, %v", b, err)
	}
}
