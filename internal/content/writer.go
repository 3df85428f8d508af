package content

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// lockPoll is how often a Writer waiting for a busy ref retries the lock.
const lockPoll = 20 * time.Millisecond

// ingestMeta is what an ingest remembers besides its data.
type ingestMeta struct {
	Ref       string        `json:"ref"`
	Expected  digest.Digest `json:"expected,omitempty"`
	Size      int64         `json:"size"`
	StartedAt time.Time     `json:"startedAt"`
}

// Writer writes one blob through an ingest. It is not safe for concurrent
// use; one goroutine writes, then calls exactly one of Commit, Close or Abort
// (Close after Commit or Abort is a harmless no-op, so `defer w.Close()` is
// the idiom).
type Writer struct {
	s        *Store
	ref      string
	dir      string
	expected digest.Digest
	size     int64
	lock     *os.File
	data     *os.File
	digester digest.Digester
	offset   int64
	done     bool
}

func (s *Store) ingestDir(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(h[:]))
}

// Writer opens the ingest named ref for writing. ref is any string that
// names this write (e.g. "pull-<digest>"); a later Writer with the same ref
// resumes where an interrupted one (Close, crash, kill -9) stopped: Offset
// tells where, and the data so far is re-hashed to restore the digest state.
//
// expected and size may be "" and -1 when unknown (a build or commit
// producing new content); when given they are checked at Commit. A resumed
// ingest whose expected digest or size differs from the new call's is
// discarded and starts again at offset 0.
//
// If the blob is already committed, Writer returns an error matching
// errors.Is(err, ErrExists) (and errdefs.ErrConflict).
//
// Two Writers on one ref at once: the second WAITS (polling a file lock,
// also across processes) until the first finishes or ctx ends; if the first
// committed the expected blob, the second then gets ErrExists. Do not open two
// Writers on one ref from one goroutine: that waits for ctx.
func (s *Store) Writer(ctx context.Context, ref string, expected digest.Digest, size int64) (*Writer, error) {
	if ref == "" {
		return nil, errdefs.Invalidf("content writer: empty ref")
	}
	if expected != "" {
		if err := ValidateDigest(expected); err != nil {
			return nil, err
		}
		if _, err := s.Info(ctx, expected); err == nil {
			return nil, fmt.Errorf("content %s: %w", expected, ErrExists)
		}
	}
	if size < -1 {
		return nil, errdefs.Invalidf("content writer %q: invalid size %d", ref, size)
	}
	dir := s.ingestDir(ref)
	lock, err := lockIngest(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	w := &Writer{s: s, ref: ref, dir: dir, expected: expected, size: size, lock: lock}
	if err := w.open(ctx); err != nil {
		w.release()
		return nil, err
	}
	return w, nil
}

// lockIngest creates dir if needed and takes its exclusive lock, waiting for
// another holder until ctx ends. It copes with the holder removing the
// directory (commit, abort) while we wait: the lock then belongs to a
// deleted file, and we start again.
func lockIngest(ctx context.Context, dir string) (*os.File, error) {
	for {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // dir removed between MkdirAll and OpenFile
			}
			return nil, err
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, errdefs.Conflict(fmt.Errorf("ingest locked by another writer: %w", ctx.Err()))
			case <-time.After(lockPoll):
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock ingest: %w", err)
		}
		// Is the file we locked still the one at the path?
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, err
		}
		if err := unix.Stat(filepath.Join(dir, "lock"), &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return f, nil
		}
		f.Close()
	}
}

// compatible says whether an ingest started with meta m may be resumed by a
// Writer expecting (expected, size): the same expectations, or the ingest
// did not know them yet (a chunked upload learns its digest at the end).
func compatible(m ingestMeta, expected digest.Digest, size int64) bool {
	return (m.Expected == expected || m.Expected == "") && (m.Size == size || m.Size == -1)
}

// open loads or starts the ingest's state. Preconditions: w.lock is held.
func (w *Writer) open(ctx context.Context) error {
	if w.expected != "" {
		// The previous holder may have committed it while we waited.
		if _, err := w.s.Info(ctx, w.expected); err == nil {
			return fmt.Errorf("content %s: %w", w.expected, ErrExists)
		}
	}
	metaPath := filepath.Join(w.dir, "meta.json")
	dataPath := filepath.Join(w.dir, "data")
	reset, rewrite := true, true
	started := time.Now().UTC()
	if b, err := os.ReadFile(metaPath); err == nil {
		var m ingestMeta
		if json.Unmarshal(b, &m) == nil && m.Ref == w.ref && compatible(m, w.expected, w.size) {
			reset = false
			rewrite = m.Expected != w.expected || m.Size != w.size
			started = m.StartedAt
		}
	}
	flags := os.O_RDWR | os.O_CREATE | unix.O_CLOEXEC
	if reset {
		flags |= os.O_TRUNC
	}
	if rewrite {
		m := ingestMeta{Ref: w.ref, Expected: w.expected, Size: w.size, StartedAt: started}
		b, _ := json.Marshal(m)
		if err := os.WriteFile(metaPath, b, 0o600); err != nil {
			return fmt.Errorf("content writer %q: %w", w.ref, err)
		}
	}
	f, err := os.OpenFile(dataPath, flags, 0o600)
	if err != nil {
		return fmt.Errorf("content writer %q: %w", w.ref, err)
	}
	w.data = f
	alg := digest.Canonical
	if w.expected != "" {
		alg = w.expected.Algorithm()
	}
	w.digester = alg.Digester()
	// Restore the digest state: from the state a clean Close saved when it
	// still matches the data, else by re-hashing the partial data (after a
	// crash).
	n, ok := w.loadHashState(f)
	if !ok {
		w.digester = alg.Digester()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("content writer %q: %w", w.ref, err)
		}
		if n, err = io.Copy(w.digester.Hash(), f); err != nil {
			return fmt.Errorf("content writer %q: rehash partial data: %w", w.ref, err)
		}
	}
	os.Remove(filepath.Join(w.dir, "hashstate")) // stale as soon as we write
	if w.size >= 0 && n > w.size {
		// Cannot be right: start over.
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("content writer %q: %w", w.ref, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("content writer %q: %w", w.ref, err)
		}
		w.digester = alg.Digester()
		n = 0
	}
	w.offset = n
	return nil
}

// Ref returns the ingest's name.
func (w *Writer) Ref() string { return w.ref }

// Offset returns how many bytes the ingest holds (after a resume, where to
// continue reading the source).
func (w *Writer) Offset() int64 { return w.offset }

// Digest returns the digest of what has been written so far.
func (w *Writer) Digest() digest.Digest { return w.digester.Digest() }

// Write appends p to the ingest. Writing past a known size fails with
// errdefs.ErrInvalid: the source is not the expected blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("content writer: write after commit, close or abort")
	}
	if w.size >= 0 && w.offset+int64(len(p)) > w.size {
		return 0, errdefs.Invalidf("content %q: more data than the expected size %d", w.ref, w.size)
	}
	n, err := w.data.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		return n, fmt.Errorf("content writer %q: %w", w.ref, err)
	}
	return n, nil
}

// Commit verifies size and digest, fsyncs and atomically renames the data
// into blobs/. On a mismatch it removes the ingest and returns an error
// classified errdefs.ErrInvalid naming expected and actual values. If the
// same blob was committed meanwhile, the ingest is dropped and the error
// matches ErrExists. The Writer is finished either way.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return errors.New("content writer: commit after commit, close or abort")
	}
	defer w.release()
	if w.size >= 0 && w.offset != w.size {
		w.removeIngest()
		return errdefs.Invalidf("content %q: size mismatch: expected %d bytes, got %d", w.ref, w.size, w.offset)
	}
	actual := w.digester.Digest()
	if w.expected != "" && actual != w.expected {
		w.removeIngest()
		return errdefs.Invalidf("content %q: digest mismatch: expected %s, got %s", w.ref, w.expected, actual)
	}
	target, err := w.s.blobPath(actual)
	if err != nil {
		return err
	}
	if _, err := os.Stat(target); err == nil {
		w.removeIngest()
		return fmt.Errorf("content %s: %w", actual, ErrExists)
	}
	if err := w.data.Sync(); err != nil {
		return fmt.Errorf("content %q: sync: %w", w.ref, err)
	}
	if err := w.data.Chmod(0o444); err != nil {
		return fmt.Errorf("content %q: %w", w.ref, err)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), target); err != nil {
		return fmt.Errorf("content %q: commit: %w", w.ref, err)
	}
	syncDir(filepath.Dir(target))
	w.removeIngest()
	return nil
}

// Close stops writing but keeps the ingest, so a later Writer with the same
// ref resumes it.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	var err error
	if w.data != nil {
		err = w.data.Sync()
		if err == nil {
			w.saveHashState()
		}
	}
	w.release()
	return err
}

// hashState is the digester's state at an offset, saved by Close so that
// resuming does not re-read the partial data.
type hashState struct {
	Algorithm digest.Algorithm `json:"algorithm"`
	Offset    int64            `json:"offset"`
	State     []byte           `json:"state"`
}

func (w *Writer) saveHashState() {
	m, ok := w.digester.Hash().(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return
	}
	alg := digest.Canonical
	if w.expected != "" {
		alg = w.expected.Algorithm()
	}
	js, _ := json.Marshal(hashState{Algorithm: alg, Offset: w.offset, State: b})
	tmp := filepath.Join(w.dir, "hashstate.tmp")
	if os.WriteFile(tmp, js, 0o600) == nil {
		os.Rename(tmp, filepath.Join(w.dir, "hashstate"))
	}
}

// loadHashState restores the digester from a saved state that matches the
// data file's length and the algorithm, leaving f at its end.
func (w *Writer) loadHashState(f *os.File) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(w.dir, "hashstate"))
	if err != nil {
		return 0, false
	}
	var st hashState
	if json.Unmarshal(b, &st) != nil || st.Algorithm != w.digester.Digest().Algorithm() {
		return 0, false
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || end != st.Offset {
		return 0, false
	}
	u, ok := w.digester.Hash().(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(st.State) != nil {
		return 0, false
	}
	return st.Offset, true
}

// Abort stops writing and removes the ingest.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	err := w.removeIngest()
	w.release()
	return err
}

// removeIngest deletes the ingest directory. Preconditions: the lock is held
// (the lock file goes too; waiters notice and retry on a fresh one).
func (w *Writer) removeIngest() error {
	if err := os.RemoveAll(w.dir); err != nil {
		return fmt.Errorf("content %q: remove ingest: %w", w.ref, err)
	}
	return nil
}

// release closes the files and drops the lock; the Writer is finished.
func (w *Writer) release() {
	w.done = true
	if w.data != nil {
		w.data.Close()
		w.data = nil
	}
	if w.lock != nil {
		w.lock.Close() // closing the only descriptor drops the flock
		w.lock = nil
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// IngestStatus describes an in-progress or abandoned write.
type IngestStatus struct {
	Ref       string
	Expected  digest.Digest
	Size      int64 // expected total, -1 if unknown
	Offset    int64 // bytes written so far
	StartedAt time.Time
	UpdatedAt time.Time
}

// Ingests lists the ingests present (in progress or abandoned).
func (s *Store) Ingests(ctx context.Context) ([]IngestStatus, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []IngestStatus
	for _, e := range entries {
		dir := filepath.Join(s.root, "ingest", e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			continue
		}
		var m ingestMeta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		st := IngestStatus{Ref: m.Ref, Expected: m.Expected, Size: m.Size, StartedAt: m.StartedAt}
		if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			st.Offset = fi.Size()
			st.UpdatedAt = fi.ModTime()
		}
		out = append(out, st)
	}
	return out, nil
}

// CleanIngests removes ingests not written to for olderThan (crash
// leftovers). Ingests a live Writer holds are never removed.
func (s *Store) CleanIngests(ctx context.Context, olderThan time.Duration) error {
	base := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("clean ingests: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(base, e.Name())
		if !e.IsDir() {
			errs = append(errs, os.Remove(dir))
			continue
		}
		newest := time.Time{}
		for _, name := range []string{"data", "meta.json", ""} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
		}
		if newest.After(cutoff) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // in use
			continue
		}
		errs = append(errs, os.RemoveAll(dir))
		f.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean ingests: %w", err)
	}
	return nil
}

// AbortIngest removes the ingest named ref (an upload cancelled, or one made
// pointless by ErrExists), waiting for a live Writer on it to finish. A
// missing ingest is not an error.
func (s *Store) AbortIngest(ctx context.Context, ref string) error {
	dir := s.ingestDir(ref)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := lockIngest(ctx, dir)
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	defer lock.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}
