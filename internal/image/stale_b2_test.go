package image_test

// Written by helper B2.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// TestRemoveStale leaves what a kill -9 mid-unpack leaves — an extraction
// snapshot, a spooled load directory, a snapshot still mounted in the temp
// directory — and checks RemoveStale clears it all without deleting through
// the mount into the tree mounted there.
func TestRemoveStale(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := testutil.DataRoot(t)
	s, sn, _ := b2Store(t, root)

	if _, err := sn.Prepare(ctx, "extract-0123-sha256:dead", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "container-keep", ""); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, "tmp")
	spool := filepath.Join(tmp, "load-1")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(spool, "1"), []byte("x"), 0o600)
	// A tree that must survive, bind-mounted (twice, stacked) where an
	// unpack mounts its snapshot.
	precious := filepath.Join(root, "precious")
	os.MkdirAll(precious, 0o755)
	sentinel := filepath.Join(precious, "sentinel")
	os.WriteFile(sentinel, []byte("keep"), 0o644)
	mnt := filepath.Join(tmp, "unpack-2")
	os.MkdirAll(mnt, 0o700)
	for range 2 {
		if err := unix.Mount(precious, mnt, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.RemoveStale(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "extract-0123-sha256:dead"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("extraction snapshot: %v", err)
	}
	if _, err := sn.Stat(ctx, "container-keep"); err != nil {
		t.Errorf("a container's snapshot was removed: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d entries left in the temp dir", len(left))
	}
	if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
		t.Fatalf("the mounted tree was damaged: %q, %v", b, err)
	}
	if m, _ := testutil.MountsUnder(root); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	// Nothing to do is fine, and a store without a temp dir yet too.
	if err := s.RemoveStale(ctx); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(tmp)
	if err := s.RemoveStale(ctx); err != nil {
		t.Fatal(err)
	}
}
