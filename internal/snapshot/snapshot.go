// Package snapshot keeps layered root filesystems as snapshots keyed by name
// (committed layers by chain ID) and hands out the mounts that assemble them,
// as data: it never mounts anything for its caller.
//
// Two implementations share one bookkeeping core and one test suite
// (internal/snapshot/testsuite): Overlay stacks directories with overlayfs,
// Native copies the parent's tree where overlayfs cannot be used.
package snapshot

import (
	"context"
	"time"
)

// Kind is a snapshot's state.
type Kind string

// The kinds of snapshot.
const (
	KindActive    Kind = "active"    // writable, made by Prepare
	KindView      Kind = "view"      // read-only, made by View
	KindCommitted Kind = "committed" // immutable, made by Commit; may be a parent
)

// Info describes one snapshot.
type Info struct {
	Name    string // key of an active snapshot or view, name of a committed one
	Parent  string // committed parent, "" for none
	Kind    Kind
	Created time.Time
}

// Snapshotter manages snapshots. All methods are safe for concurrent use.
type Snapshotter interface {
	// Prepare makes a writable snapshot key on top of the committed snapshot
	// parent ("" for an empty one) and returns the mounts that assemble it.
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	// View makes a read-only snapshot key of parent.
	View(ctx context.Context, key, parent string) ([]Mount, error)
	// Mounts returns the mounts of an active snapshot or view.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Commit turns active snapshot key into committed snapshot name; key is
	// gone afterwards.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot; one with children is an errdefs Conflict.
	Remove(ctx context.Context, key string) error
	// Stat describes a snapshot; an unknown one is errdefs NotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Walk calls fn for every snapshot, in name order.
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage returns the disk space (bytes in blocks) the snapshot's own
	// directory takes, not counting its parents.
	Usage(ctx context.Context, key string) (int64, error)
	// ApplyDir returns where a layer can be unpacked into active snapshot key
	// without mounting it, and whether the layer's whiteouts must be written
	// as overlay whiteouts (layer.OverlayWhiteouts) rather than applied
	// (layer.ApplyWhiteouts). ok is false when the snapshot must be mounted
	// and the layer applied to the mount with layer.ApplyWhiteouts.
	ApplyDir(key string) (dir string, overlayWhiteouts bool, ok bool)
	// Close releases the snapshotter's metadata file.
	Close() error
}

// New opens the snapshotter a daemon should use under root: overlay when the
// kernel and file system allow it, otherwise the copying fallback. It returns
// the driver's name ("overlayfs" or "native") for `docker info`.
func New(root string) (Snapshotter, string, error) {
	if OverlaySupported(root) == nil {
		s, err := NewOverlay(root)
		if err != nil {
			return nil, "", err
		}
		return s, "overlayfs", nil
	}
	s, err := NewNative(root)
	if err != nil {
		return nil, "", err
	}
	return s, "native", nil
}
