package snapshot_test

import (
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
