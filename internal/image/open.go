package image

import (
	"fmt"
	"path/filepath"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/snapshot"
)

// Open makes the image store of a data root, on the daemon's metadata
// store db:
//
//	<dataRoot>/content     blobs (internal/content)
//	<dataRoot>/snapshots   layers and container root filesystems (overlay if usable, else native)
//	<dataRoot>/tmp         archives being loaded, temporary mounts
//
// It returns the snapshotter's name for `docker info` ("overlayfs" or
// "native"). Close the store to release the snapshotter.
func Open(db *metadata.DB, dataRoot string) (*Store, string, error) {
	cs, err := content.Open(filepath.Join(dataRoot, "content"))
	if err != nil {
		return nil, "", fmt.Errorf("content store: %w", err)
	}
	sn, driver, err := snapshot.New(filepath.Join(dataRoot, "snapshots"))
	if err != nil {
		return nil, "", fmt.Errorf("snapshotter: %w", err)
	}
	s, err := NewStore(Config{DB: db, Content: cs, Snapshotter: sn, TempDir: filepath.Join(dataRoot, "tmp")})
	if err != nil {
		sn.Close()
		return nil, "", err
	}
	return s, driver, nil
}

// Close releases the snapshotter (not the metadata store, which the daemon
// owns).
func (s *Store) Close() error { return s.cfg.Snapshotter.Close() }
