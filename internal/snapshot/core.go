package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/metadata"
)

// Layout under a snapshotter's root:
//
//	metadata.db          records: name → {id, kind, parent, created}
//	snapshots/<id>/fs    the snapshot's tree (overlay: its upper directory)
//	snapshots/<id>/work  overlay's work directory (active overlay snapshots)
//
// Directory ids are small decimal numbers so overlay's lowerdir option stays
// short. A record is written in the same transaction that creates its
// directory, and a directory is deleted only after its record, so a crash
// leaves at worst a directory without a record, which Open removes.
const (
	bucketSnapshots = "snapshots"
	bucketMeta      = "meta"
	keyNextID       = "next-id"
	maxDepth        = 1000 // a chain deeper than this is corrupt metadata
)

type record struct {
	Name    string
	ID      uint64
	Kind    Kind
	Parent  string `json:",omitempty"`
	Created time.Time
}

// driver is what differs between overlay and native snapshots.
type driver interface {
	// create fills the new snapshot directory dir, whose committed parents'
	// directories are parents (nearest first).
	create(ctx context.Context, dir string, kind Kind, parents []string) error
	// mounts returns the mounts of an active snapshot or view.
	mounts(dir string, kind Kind, parents []string) []Mount
	// applyDir answers ApplyDir for an active snapshot's directory.
	applyDir(dir string) (string, bool, bool)
}

// core is the bookkeeping both snapshotters share.
type core struct {
	root string
	db   *metadata.DB
	drv  driver
}

func openCore(root string, drv driver) (*core, error) {
	if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot root: %w", err)
	}
	db, err := metadata.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	c := &core{root: root, db: db, drv: drv}
	if err := c.removeOrphans(); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// removeOrphans deletes snapshot directories that have no record (left by a
// crash in Prepare or Remove).
func (c *core) removeOrphans() error {
	recs, err := metadata.All[record](c.db, bucketSnapshots)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[strconv.FormatUint(r.ID, 10)] = true
	}
	entries, err := os.ReadDir(filepath.Join(c.root, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !known[e.Name()] {
			if err := os.RemoveAll(filepath.Join(c.root, "snapshots", e.Name())); err != nil {
				return fmt.Errorf("remove orphaned snapshot directory: %w", err)
			}
		}
	}
	return nil
}

func (c *core) dir(id uint64) string {
	return filepath.Join(c.root, "snapshots", strconv.FormatUint(id, 10))
}

// Close releases the metadata file.
func (c *core) Close() error { return c.db.Close() }

func getRecord(tx *metadata.Tx, name string) (*record, error) {
	r, err := metadata.GetTx[record](tx, bucketSnapshots, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.NotFoundf("snapshot %s not found", name)
	}
	return r, err
}

// chain returns the fs directories of name and its ancestors, nearest first.
func (c *core) chain(tx *metadata.Tx, name string) ([]string, error) {
	var dirs []string
	for name != "" {
		if len(dirs) > maxDepth {
			return nil, fmt.Errorf("snapshot chain deeper than %d (corrupt metadata?)", maxDepth)
		}
		r, err := getRecord(tx, name)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, filepath.Join(c.dir(r.ID), "fs"))
		name = r.Parent
	}
	return dirs, nil
}

func (c *core) create(ctx context.Context, key, parent string, kind Kind) ([]Mount, error) {
	if key == "" {
		return nil, errdefs.Invalidf("snapshot key must not be empty")
	}
	var mounts []Mount
	var made string
	err := c.db.Update(func(tx *metadata.Tx) error {
		if tx.GetRaw(bucketSnapshots, key) != nil {
			return errdefs.Conflictf("snapshot %s already exists", key)
		}
		var parents []string
		if parent != "" {
			p, err := getRecord(tx, parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if p.Kind != KindCommitted {
				return errdefs.Invalidf("parent %s is not a committed snapshot", parent)
			}
			if parents, err = c.chain(tx, parent); err != nil {
				return err
			}
		}
		id := uint64(1)
		if n, err := metadata.GetTx[uint64](tx, bucketMeta, keyNextID); err == nil {
			id = *n
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		next := id + 1
		if err := metadata.PutTx(tx, bucketMeta, keyNextID, &next); err != nil {
			return err
		}
		dir := c.dir(id)
		// A leftover from a crash would have been removed at open; anything
		// here now is not ours to reuse.
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create snapshot directory: %w", err)
		}
		made = dir
		if err := c.drv.create(ctx, dir, kind, parents); err != nil {
			return err
		}
		rec := &record{Name: key, ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC()}
		if err := metadata.PutTx(tx, bucketSnapshots, key, rec); err != nil {
			return err
		}
		mounts = c.drv.mounts(dir, kind, parents)
		return nil
	})
	if err != nil {
		if made != "" {
			_ = os.RemoveAll(made)
		}
		return nil, err
	}
	return mounts, nil
}

// Prepare makes a writable snapshot key on top of committed parent.
func (c *core) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	return c.create(ctx, key, parent, KindActive)
}

// View makes a read-only snapshot key of committed parent.
func (c *core) View(ctx context.Context, key, parent string) ([]Mount, error) {
	return c.create(ctx, key, parent, KindView)
}

// Mounts returns the mounts of an active snapshot or view.
func (c *core) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var mounts []Mount
	err := c.db.View(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if r.Kind == KindCommitted {
			return errdefs.Invalidf("snapshot %s is committed: view or prepare on top of it", key)
		}
		parents, err := c.chain(tx, r.Parent)
		if err != nil {
			return err
		}
		mounts = c.drv.mounts(c.dir(r.ID), r.Kind, parents)
		return nil
	})
	return mounts, err
}

// Commit turns active snapshot key into committed snapshot name.
func (c *core) Commit(ctx context.Context, name, key string) error {
	if name == "" {
		return errdefs.Invalidf("snapshot name must not be empty")
	}
	var id uint64
	err := c.db.Update(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return errdefs.Invalidf("snapshot %s is %s, not active", key, r.Kind)
		}
		if tx.GetRaw(bucketSnapshots, name) != nil {
			return errdefs.Conflictf("snapshot %s already exists", name)
		}
		if err := metadata.DeleteTx(tx, bucketSnapshots, key); err != nil {
			return err
		}
		r.Name, r.Kind = name, KindCommitted
		id = r.ID
		return metadata.PutTx(tx, bucketSnapshots, name, r)
	})
	if err != nil {
		return err
	}
	// The work directory is overlay's scratch space; a committed layer is
	// never an upper directory again.
	_ = os.RemoveAll(filepath.Join(c.dir(id), "work"))
	return nil
}

// Remove deletes snapshot key unless it has children.
func (c *core) Remove(ctx context.Context, key string) error {
	var id uint64
	err := c.db.Update(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		// Only a committed snapshot can be a parent (create): an active
		// one or a view, such as every container's rootfs, has no
		// children, and removing it need not read every record.
		var child string
		if r.Kind != KindCommitted {
			id = r.ID
			return metadata.DeleteTx(tx, bucketSnapshots, key)
		}
		err = tx.ForEach(bucketSnapshots, func(k string, data []byte) error {
			if child == "" && k != key {
				cr, err := metadata.GetTx[record](tx, bucketSnapshots, k)
				if err != nil {
					return err
				}
				if cr.Parent == key {
					child = k
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if child != "" {
			return errdefs.Conflictf("snapshot %s has children (%s)", key, child)
		}
		id = r.ID
		return metadata.DeleteTx(tx, bucketSnapshots, key)
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(c.dir(id)); err != nil {
		return fmt.Errorf("remove snapshot %s: %w (its directory is removed at the next start)", key, err)
	}
	return nil
}

func (r *record) info() Info {
	return Info{Name: r.Name, Parent: r.Parent, Kind: r.Kind, Created: r.Created}
}

// Stat describes snapshot key.
func (c *core) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := c.db.View(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		info = r.info()
		return nil
	})
	return info, err
}

// Walk calls fn for every snapshot in name order.
func (c *core) Walk(ctx context.Context, fn func(Info) error) error {
	recs, err := metadata.All[record](c.db, bucketSnapshots)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r.info()); err != nil {
			return err
		}
	}
	return nil
}

// Usage returns the disk space of the snapshot's own tree, like du: blocks,
// each inode counted once.
func (c *core) Usage(ctx context.Context, key string) (int64, error) {
	var id uint64
	err := c.db.View(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		id = r.ID
		return nil
	})
	if err != nil {
		return 0, err
	}
	return diskUsage(ctx, filepath.Join(c.dir(id), "fs"))
}

func diskUsage(ctx context.Context, dir string) (int64, error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		k := ino{uint64(st.Dev), st.Ino}
		if seen[k] {
			return nil
		}
		seen[k] = true
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// activeDir returns the fs directory of active snapshot key, or "".
func (c *core) activeDir(key string) string {
	var dir string
	_ = c.db.View(func(tx *metadata.Tx) error {
		r, err := getRecord(tx, key)
		if err == nil && r.Kind == KindActive {
			dir = c.dir(r.ID)
		}
		return nil
	})
	return dir
}

// ApplyDir returns where a layer can be unpacked into active snapshot key.
func (c *core) ApplyDir(key string) (string, bool, bool) {
	dir := c.activeDir(key)
	if dir == "" {
		return "", false, false
	}
	return c.drv.applyDir(dir)
}
