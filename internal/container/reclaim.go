package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/mountinfo"
	"github.com/berth/berth/internal/reference"
)

// A removal answers once the container's record is deleted and its rootfs
// unmounted. What is left then is disk nothing reaches any more: the
// rootfs snapshot, the bundle under the exec root and the directory under
// the data root (logs, config). reclaim deletes them in the background,
// off `docker rm`'s and `run --rm`'s path (about 2 ms here). A daemon that
// dies first leaves them to the next start (reclaimOrphans), which knows
// them as snapshots and directories of IDs without a record.
//
// A removed container's snapshot is a child of its image's top layer
// until it is deleted, so the image's removal waits for the reclaims in
// progress first (UsingImage).

// reclaim deletes removed container id's disk in the background.
func (s *Service) reclaim(id string) {
	done := make(chan struct{})
	s.mu.Lock()
	s.reclaiming[id] = done
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.reclaiming, id)
			s.mu.Unlock()
			close(done)
		}()
		s.deleteDisk(s.lifetime, id)
	}()
}

// deleteDisk deletes what container id, removed and unmounted, left on
// disk; failures are logged, and the next start tries again.
func (s *Service) deleteDisk(ctx context.Context, id string) {
	if err := s.cfg.Images.RemoveRootfs(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		log.From(ctx).Warn("removed container: deleting its rootfs", "container", id, "err", err)
	}
	for _, dir := range []string{s.bundle(id), s.dir(id)} {
		if mountinfo.Busy(dir) {
			// Never delete through a mount (its files are someone else's).
			log.From(ctx).Warn("removed container: a mount is left under its directory; kept", "dir", dir)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.From(ctx).Warn("removed container: deleting its directory", "dir", dir, "err", err)
		}
	}
}

// awaitReclaims waits until the reclaims in progress now are done.
func (s *Service) awaitReclaims() {
	s.mu.Lock()
	var pending []chan struct{}
	for _, done := range s.reclaiming {
		pending = append(pending, done)
	}
	s.mu.Unlock()
	for _, done := range pending {
		<-done
	}
}

// reclaimOrphans deletes, at start, the disk of containers whose record
// is gone (a removal the daemon did not finish reclaiming): rootfs
// snapshots and data-root directories named by a container ID the store
// does not have. Builds' snapshots (not container IDs) are the builder's.
func (s *Service) reclaimOrphans(ctx context.Context) {
	known := func(id string) bool {
		c, err := s.index.get(id)
		return err == nil && c.ID == id
	}
	orphans := map[string]bool{}
	if ids, err := s.cfg.Images.RootfsIDs(ctx); err == nil {
		for _, id := range ids {
			if isContainerID(id) && !known(id) {
				orphans[id] = true
			}
		}
	} else {
		log.From(ctx).Warn("listing rootfs snapshots", "err", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.cfg.DataRoot, "containers"))
	for _, e := range ents {
		if isContainerID(e.Name()) && !known(e.Name()) {
			orphans[e.Name()] = true
		}
	}
	for id := range orphans {
		log.From(ctx).Info("deleting what a removed container left on disk", "container", ShortID(id))
		s.deleteDisk(ctx, id)
	}
}

// isContainerID says whether s is a full container ID (64 hex digits).
func isContainerID(s string) bool { return len(s) == 64 && reference.IsHex(s) }
