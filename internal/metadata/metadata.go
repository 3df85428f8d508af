// Package metadata is the daemon's metadata store: typed JSON records in
// named buckets of a bbolt file, with transactions for multi-record
// changes. Open is the one durable store (meta.db under the data root);
// OpenState is the store of runtime state, which a reboot makes void
// (docs/decisions/0098).
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/berth/berth/internal/errdefs"
)

// openTimeout bounds how long Open waits for the file lock another process
// holds: a second daemon on the same data root fails fast instead of hanging.
const openTimeout = time.Second

// DB is an open metadata file. It is safe for concurrent use.
type DB struct {
	path string
	bolt *bolt.DB
}

// Tx is a transaction passed to Update and View. It is valid only inside the
// function it was passed to.
type Tx struct {
	tx *bolt.Tx
}

// Open opens (creating if needed) the metadata file at path. If another
// process holds it, Open fails after about a second with an errdefs Conflict
// error naming the file.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return openBolt(path, &bolt.Options{Timeout: openTimeout})
}

func openBolt(path string, opts *bolt.Options) (*DB, error) {
	b, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, errdefs.Conflictf("metadata file %s is in use by another daemon", path)
		}
		return nil, fmt.Errorf("open metadata file %s: %w", path, err)
	}
	return &DB{path: path, bolt: b}, nil
}

// OpenState opens (creating if needed) the runtime-state store in dir:
// records that describe what lives only until the next boot, such as the
// network endpoints of running containers. Its commits skip fsync. A
// process crash (kill -9) loses nothing, since every write is in the page
// cache before the commit returns, in order. Only a kernel crash or a power
// loss can lose or tear the file, and then the boot has changed: the file
// is named by the boot it was written in, and OpenState removes the files
// of other boots.
func OpenState(dir string) (*DB, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, fmt.Errorf("state store: the boot id: %w", err)
	}
	id := strings.TrimSpace(string(boot))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	path := filepath.Join(dir, stateFile(id))
	if old, err := filepath.Glob(filepath.Join(dir, stateFile("*"))); err == nil {
		for _, o := range old {
			if o != path {
				os.Remove(o) // another boot's: nothing it says is true any more
			}
		}
	}
	return openBolt(path, &bolt.Options{Timeout: openTimeout, NoSync: true, NoGrowSync: true, NoFreelistSync: true})
}

func stateFile(boot string) string { return "state-" + boot + ".db" }

// Path returns the file the DB was opened from.
func (db *DB) Path() string { return db.path }

// Close closes the file and releases its lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Update runs fn in a read-write transaction, committed if fn returns nil and
// rolled back otherwise.
func (db *DB) Update(fn func(tx *Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Put stores v as JSON under bucket/key, replacing any previous record.
func Put[T any](db *DB, bucket, key string, v *T) error {
	return db.Update(func(tx *Tx) error { return PutTx(tx, bucket, key, v) })
}

// Get loads the record at bucket/key; an absent record is errdefs NotFound.
func Get[T any](db *DB, bucket, key string) (*T, error) {
	var out *T
	err := db.View(func(tx *Tx) error {
		var err error
		out, err = GetTx[T](tx, bucket, key)
		return err
	})
	return out, err
}

// Delete removes bucket/key; an absent record is not an error.
func Delete(db *DB, bucket, key string) error {
	return db.Update(func(tx *Tx) error { return DeleteTx(tx, bucket, key) })
}

// All loads every record of bucket in key order.
func All[T any](db *DB, bucket string) ([]*T, error) {
	var out []*T
	err := db.View(func(tx *Tx) error {
		var err error
		out, err = AllTx[T](tx, bucket)
		return err
	})
	return out, err
}

// Keys returns the keys of bucket in order.
func Keys(db *DB, bucket string) ([]string, error) {
	var out []string
	err := db.View(func(tx *Tx) error {
		return tx.ForEach(bucket, func(k string, _ []byte) error {
			out = append(out, k)
			return nil
		})
	})
	return out, err
}

// PutTx is Put inside a transaction.
func PutTx[T any](tx *Tx, bucket, key string, v *T) error {
	if key == "" {
		return errdefs.Invalidf("metadata: empty key in bucket %s", bucket)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metadata: encode %s/%s: %w", bucket, key, err)
	}
	return tx.PutRaw(bucket, key, data)
}

// GetTx is Get inside a transaction.
func GetTx[T any](tx *Tx, bucket, key string) (*T, error) {
	data := tx.GetRaw(bucket, key)
	if data == nil {
		return nil, errdefs.NotFoundf("%s: no record %q", bucket, key)
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("metadata: decode %s/%s: %w", bucket, key, err)
	}
	return v, nil
}

// DeleteTx is Delete inside a transaction.
func DeleteTx(tx *Tx, bucket, key string) error {
	b := tx.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("metadata: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// AllTx is All inside a transaction.
func AllTx[T any](tx *Tx, bucket string) ([]*T, error) {
	var out []*T
	err := tx.ForEach(bucket, func(k string, data []byte) error {
		v := new(T)
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("metadata: decode %s/%s: %w", bucket, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// PutRaw stores raw bytes under bucket/key, creating the bucket if needed.
func (tx *Tx) PutRaw(bucket, key string, data []byte) error {
	b, err := tx.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("metadata: bucket %s: %w", bucket, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("metadata: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// GetRaw returns a copy of the raw bytes at bucket/key, or nil when absent.
func (tx *Tx) GetRaw(bucket, key string) []byte {
	b := tx.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// ForEach calls fn for every key of bucket in order; a missing bucket is
// empty. data is valid only during the call.
func (tx *Tx) ForEach(bucket string, fn func(key string, data []byte) error) error {
	b := tx.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// Writable reports whether tx may change the store.
func (tx *Tx) Writable() bool { return tx.tx.Writable() }
