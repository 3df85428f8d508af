package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOrphanDirsRemovedAtOpen: a crash between creating a snapshot's
// directory and committing its record (or between deleting a record and its
// directory) leaves a directory without a record; Open removes it and keeps
// the rest.
func TestOrphanDirsRemovedAtOpen(t *testing.T) {
	root := t.TempDir()
	s, err := NewOverlay(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Prepare(ctx, "kept", ""); err != nil {
		t.Fatal(err)
	}
	keptDir, _, _ := s.ApplyDir("kept")
	s.Close()
	orphan := filepath.Join(root, "snapshots", "999", "fs")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(orphan, "junk"), []byte("x"), 0o644)
	s, err = NewOverlay(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(root, "snapshots", "999")); !os.IsNotExist(err) {
		t.Fatalf("orphan directory still there: %v", err)
	}
	if _, err := os.Stat(keptDir); err != nil {
		t.Fatalf("recorded snapshot's directory removed: %v", err)
	}
	// The next id does not collide with anything left.
	if _, err := s.Prepare(ctx, "next", ""); err != nil {
		t.Fatal(err)
	}
}
