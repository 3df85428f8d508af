// Package content stores blobs by digest on disk, writing each through an
// ingest that verifies size and digest before the blob becomes visible.
//
// Layout under the root (<data-root>/content):
//
//	blobs/<alg>/<hex>          committed blobs, read-only, never rewritten
//	ingest/<sha256(ref)>/      one in-progress write: ref, meta.json, data, lock
//
// A blob appears under blobs/ only by rename(2) of fully written, fsynced and
// verified data, so a crash at any point leaves at worst an ingest directory,
// which a later Writer with the same ref resumes or CleanIngests removes.
package content

import (
	"context"
	_ "crypto/sha256" // register the digest algorithms go-digest uses
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrExists is returned (wrapped) when a blob being written is already
// committed. It is classified errdefs.ErrConflict; callers that only want the
// blob to exist treat it as success.
var ErrExists = errdefs.Conflict(errors.New("content already exists"))

// Info describes one committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// ReaderAt reads a committed blob at any offset.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is a content store rooted in one directory. It is safe for
// concurrent use by many goroutines and by several processes sharing the
// root: writers on one ref are serialised by a file lock.
type Store struct {
	root string
}

// Open opens (creating if needed) the store rooted at root.
func Open(root string) (*Store, error) {
	for _, d := range []string{
		filepath.Join(root, "blobs", string(digest.SHA256)),
		filepath.Join(root, "blobs", string(digest.SHA512)),
		filepath.Join(root, "ingest"),
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// ValidateDigest checks that dgst is a well-formed sha256 or sha512 digest
// (lower-case hex of the right length). Any digest that comes from outside
// must pass it before it is used; only then is it safe to turn into a path.
func ValidateDigest(dgst digest.Digest) error {
	// Algorithm() panics on a string without ':', so split by hand first.
	algStr, _, ok := strings.Cut(string(dgst), ":")
	if !ok {
		return errdefs.Invalidf("invalid digest %q: no algorithm", truncate(string(dgst)))
	}
	alg := digest.Algorithm(algStr)
	if alg != digest.SHA256 && alg != digest.SHA512 {
		return errdefs.Invalidf("invalid digest %q: unsupported algorithm", truncate(string(dgst)))
	}
	if err := dgst.Validate(); err != nil {
		return errdefs.Invalidf("invalid digest %q: %w", truncate(string(dgst)), err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// blobPath returns the path of dgst, or an error for a malformed digest.
func (s *Store) blobPath(dgst digest.Digest) (string, error) {
	if err := ValidateDigest(dgst); err != nil {
		return "", err
	}
	enc := dgst.Encoded()
	if strings.ContainsAny(enc, "/.\\") { // belt and braces: Validate allows only hex
		return "", errdefs.Invalidf("invalid digest %q", truncate(string(dgst)))
	}
	return filepath.Join(s.root, "blobs", string(dgst.Algorithm()), enc), nil
}

// Info returns the size and creation time of a committed blob.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, errdefs.NotFoundf("content %s: not found", dgst)
		}
		return Info{}, fmt.Errorf("content %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

type readerAt struct {
	*os.File
	size int64
}

func (r readerAt) Size() int64 { return r.size }

// ReaderAt opens a committed blob for random access.
func (s *Store) ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error) {
	f, err := s.openBlob(dgst)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content %s: %w", dgst, err)
	}
	return readerAt{File: f, size: fi.Size()}, nil
}

// Open opens a committed blob for sequential reading.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (io.ReadCloser, error) {
	return s.openBlob(dgst)
}

func (s *Store) openBlob(dgst digest.Digest) (*os.File, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFoundf("content %s: not found", dgst)
		}
		return nil, fmt.Errorf("content %s: %w", dgst, err)
	}
	return f, nil
}

// ReadBlob reads a whole committed blob into memory (manifests, configs).
func (s *Store) ReadBlob(ctx context.Context, dgst digest.Digest) ([]byte, error) {
	f, err := s.openBlob(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("content %s: %w", dgst, err)
	}
	return b, nil
}

// WriteBlob writes r, which must hold desc's content, into the store. It is
// not an error if the blob already exists: r is then not read at all.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, desc ocispec.Descriptor) error {
	w, err := s.Writer(ctx, "write-"+desc.Digest.String(), desc.Digest, desc.Size)
	if err != nil {
		if errors.Is(err, ErrExists) {
			return nil
		}
		return err
	}
	defer w.Close()
	if w.Offset() > 0 {
		// A resumed ingest: skip what is already written.
		if _, err := io.CopyN(io.Discard, r, w.Offset()); err != nil {
			w.Abort()
			return fmt.Errorf("write blob %s: skip resumed data: %w", desc.Digest, err)
		}
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		if errors.Is(err, errdefs.ErrInvalid) {
			w.Abort() // the source is not this blob: nothing worth resuming
		}
		return fmt.Errorf("write blob %s: %w", desc.Digest, err)
	}
	if err := w.Commit(ctx); err != nil {
		if errors.Is(err, ErrExists) {
			return nil
		}
		return err
	}
	return nil
}

// ctxReader stops a copy when ctx is canceled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Delete removes a committed blob. Readers that already opened it keep
// reading the old data.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.NotFoundf("content %s: not found", dgst)
		}
		return fmt.Errorf("delete content %s: %w", dgst, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in no particular order. Files
// under blobs/ whose names are not valid digests are ignored. An error from
// fn stops the walk and is returned.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		dir := filepath.Join(s.root, "blobs", string(alg))
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("walk content: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if ValidateDigest(dgst) != nil || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("walk content: %w", err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}
