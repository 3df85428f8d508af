package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Overlay keeps each snapshot's own changes in a directory and assembles a
// snapshot with overlayfs: the parents' directories as lower layers and, for
// an active snapshot, its own as the upper one.
//
// Mount options are limited to one page by mount(2); with the short numeric
// directory ids that is about 4096/(len(root)+20) layers. Longer lowerdir
// lists are mounted with fsopen/fsconfig("lowerdir+"), one layer at a time
// (Linux 6.8+); overlayfs itself allows at most 500 lower layers.
type Overlay struct {
	*core
}

var _ Snapshotter = (*Overlay)(nil)

// NewOverlay opens (creating if needed) an overlay snapshotter under root.
// It does not probe the kernel: see OverlaySupported.
func NewOverlay(root string) (*Overlay, error) {
	c, err := openCore(root, overlayDriver{})
	if err != nil {
		return nil, err
	}
	return &Overlay{core: c}, nil
}

type overlayDriver struct{}

func (overlayDriver) create(ctx context.Context, dir string, kind Kind, parents []string) error {
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		return fmt.Errorf("create snapshot directory: %w", err)
	}
	if kind == KindActive {
		if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
			return fmt.Errorf("create snapshot directory: %w", err)
		}
	}
	return nil
}

func (overlayDriver) mounts(dir string, kind Kind, parents []string) []Mount {
	fsDir := filepath.Join(dir, "fs")
	switch {
	case kind == KindView && len(parents) == 0:
		return []Mount{{Type: "bind", Source: fsDir, Options: []string{"rbind", "ro"}}}
	case kind == KindView && len(parents) == 1:
		// One committed layer: a read-only bind mount of it is enough.
		return []Mount{{Type: "bind", Source: parents[0], Options: []string{"rbind", "ro"}}}
	case kind == KindView:
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"ro", "lowerdir=" + strings.Join(parents, ":"),
		}}}
	case len(parents) == 0:
		return []Mount{{Type: "bind", Source: fsDir, Options: []string{"rbind", "rw"}}}
	default:
		opts := []string{
			"lowerdir=" + strings.Join(parents, ":"),
			"upperdir=" + fsDir,
			"workdir=" + filepath.Join(dir, "work"),
		}
		return []Mount{{Type: "overlay", Source: "overlay", Options: append(opts, featureOptions()...)}}
	}
}

// featureOptions turns off, explicitly, the overlay features a kernel may
// enable by default that berth does not handle: the inodes index (ties an
// upper dir to one set of lowers), metacopy (metadata-only copy-ups, which a
// layer diff would export as empty files) and redirect_dir (renamed lower
// directories, which a diff cannot express). Each is passed only where the
// module knows it.
var featureOptions = sync.OnceValue(func() []string {
	var opts []string
	for _, f := range []string{"index", "metacopy", "redirect_dir"} {
		if _, err := os.Stat("/sys/module/overlay/parameters/" + f); err == nil {
			opts = append(opts, f+"=off")
		}
	}
	return opts
})

// applyDir is the upper directory: a layer unpacked there with overlay
// whiteouts (0/0 character devices, opaque xattrs) is exactly what the
// overlay mount needs, no mount required.
func (overlayDriver) applyDir(dir string) (string, bool, bool) {
	return filepath.Join(dir, "fs"), true, true
}
