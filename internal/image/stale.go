package image

// Written by helper B2.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/mountinfo"
	"github.com/berth/berth/internal/snapshot"
)

// Prefixes of the snapshot keys the store makes for its own short-lived
// work; any such snapshot found at daemon start was left by a crash.
var staleSnapshotPrefixes = []string{"extract-", "commit-view-"}

// RemoveStale removes what a crash (kill -9, power loss) in the middle of
// an unpack, load or commit leaves behind: the store's temporary snapshots
// (extraction and commit views, which are active snapshots a GC never
// takes) and everything under the store's TempDir, unmounting whatever is
// still mounted there first and deleting nothing that stays mounted.
//
// The daemon calls it at start, before it serves requests: it must not run
// while a load, pull or commit is in progress.
func (s *Store) RemoveStale(ctx context.Context) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var errs []error
	if s.cfg.TempDir != "" {
		if err := cleanTempDir(ctx, s.cfg.TempDir); err != nil {
			errs = append(errs, err)
		}
	}
	var stale []string
	err := s.cfg.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind == snapshot.KindCommitted {
			return nil
		}
		for _, p := range staleSnapshotPrefixes {
			if strings.HasPrefix(i.Name, p) {
				stale = append(stale, i.Name)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, key := range stale {
		if err := s.cfg.Snapshotter.Remove(ctx, key); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove stale snapshot %s: %w", key, err))
			continue
		}
		log.From(ctx).Info("removed snapshot left by an interrupted unpack or commit", "key", key)
	}
	return errors.Join(errs...)
}

// cleanTempDir unmounts every mount at or below dir's entries, deepest
// first, then empties dir. If anything stays mounted, nothing is deleted:
// a recursive delete must never walk into a snapshot's tree.
func cleanTempDir(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	} else if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mounts, err := mountinfo.Under(dir, false)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount stale %s: %w", m, err)
		}
	}
	if left, err := mountinfo.Under(dir, false); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("clean %s: %s stays mounted", dir, left[0])
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(entries) > 0 {
		log.From(ctx).Info("removed temporary files left by an interrupted operation", "dir", dir, "entries", len(entries))
	}
	return errors.Join(errs...)
}
