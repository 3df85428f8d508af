package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth/berth/internal/treecopy"
)

// Native is the copying fallback for file systems overlayfs cannot use: an
// active snapshot starts as a full copy of its parent's tree (owners, modes,
// times, xattrs, hard links and device nodes kept), so it costs a parent's
// size in disk and time per snapshot.
type Native struct {
	*core
}

var _ Snapshotter = (*Native)(nil)

// NewNative opens (creating if needed) a copying snapshotter under root.
func NewNative(root string) (*Native, error) {
	c, err := openCore(root, nativeDriver{})
	if err != nil {
		return nil, err
	}
	return &Native{core: c}, nil
}

type nativeDriver struct{}

func (nativeDriver) create(ctx context.Context, dir string, kind Kind, parents []string) error {
	fsDir := filepath.Join(dir, "fs")
	if kind == KindView || len(parents) == 0 {
		// A view binds its (immutable) parent read-only: nothing to copy.
		if err := os.Mkdir(fsDir, 0o755); err != nil {
			return fmt.Errorf("create snapshot directory: %w", err)
		}
		return nil
	}
	if err := treecopy.Tree(ctx, parents[0], fsDir); err != nil {
		return fmt.Errorf("copy parent snapshot: %w", err)
	}
	return nil
}

func (nativeDriver) mounts(dir string, kind Kind, parents []string) []Mount {
	if kind == KindView {
		src := filepath.Join(dir, "fs")
		if len(parents) > 0 {
			src = parents[0]
		}
		return []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	}
	return []Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{"rbind", "rw"}}}
}

// applyDir is the snapshot's full tree: whiteouts are applied (deleted) there.
func (nativeDriver) applyDir(dir string) (string, bool, bool) {
	return filepath.Join(dir, "fs"), false, true
}
