package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/mountinfo"
	"github.com/berth/berth/internal/snapshot"
)

// Cleanup removes what builds cut short by a daemon crash left: RUN
// containers, build directories under the temp dir (after unmounting the
// root filesystems mounted in them) and the build snapshots. Call it at
// daemon start, before any build runs.
func (b *Builder) Cleanup(ctx context.Context) {
	if b.containers != nil {
		list, err := b.containers.List(ctx, container.ListOptions{All: true, Filters: map[string][]string{"label": {buildLabel + "=intermediate"}}})
		if err == nil {
			for _, c := range list {
				if err := b.containers.Remove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
					log.From(ctx).Warn("remove stale build container", "container", container.ShortID(c.ID), "err", err)
				}
			}
		}
	}
	ents, _ := os.ReadDir(b.tmpDir)
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "build-") {
			continue
		}
		dir := filepath.Join(b.tmpDir, e.Name())
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			if strings.HasPrefix(s.Name(), "build-") {
				_ = snapshot.Unmount(filepath.Join(dir, s.Name()))
			}
		}
		if mountinfo.Busy(dir) {
			// Never RemoveAll across a mount: it would delete through it.
			log.From(ctx).Warn("stale build directory still has mounts; left in place", "dir", dir)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.From(ctx).Warn("remove stale build directory", "dir", dir, "err", err)
		}
	}
	ids, _ := b.images.RootfsIDs(ctx)
	for _, id := range ids {
		if !strings.HasPrefix(id, "build-") {
			continue
		}
		if err := b.images.RemoveRootfs(ctx, id); err != nil {
			log.From(ctx).Warn("remove stale build snapshot", "id", id, "err", err)
		}
	}
}

// buildLabel marks RUN containers, so a crash's leftovers can be found.
const buildLabel = "io.berth.build"
