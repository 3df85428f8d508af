package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/reference"
	"github.com/berth/berth/internal/remote"
)

// Progress reports one step of a pull or push for one blob (ID is the
// short digest) or for the whole image (ID empty), in Docker's words:
// "Pulling fs layer", "Downloading", "Download complete", "Already exists",
// "Pull complete", "Pushing", "Layer already exists", "Pushed".
type Progress func(id, status string, current, total int64)

// PullOptions tune Pull.
type PullOptions struct {
	Platform *ocispec.Platform // nil: the store's
	Progress Progress          // nil: none
}

// pullConcurrency bounds the layers fetched at once.
const pullConcurrency = 3

// Pull fetches the image ref names from its registry: manifests and config
// first, then the layers the content store does not have yet (in
// parallel, each verified against its digest and size as it is written),
// then the image is unpacked and named as Create does. Nothing is named
// unless every blob verified; blobs already fetched stay for a retry.
func (s *Store) Pull(ctx context.Context, ref string, repo *remote.Repository, opts PullOptions) (*Image, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	var tagOrDigest string
	switch r := named.(type) {
	case reference.Canonical:
		tagOrDigest = r.Digest().String()
	case reference.Tagged:
		tagOrDigest = r.Tag()
	}
	top, body, err := repo.Resolve(ctx, tagOrDigest)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Content.WriteBlob(ctx, bytesReader(body), top); err != nil {
		return nil, err
	}
	fetch := &fetchingReader{s: s, repo: repo}
	platform := s.cfg.Platform
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	_, m, err := manifestFor(ctx, fetch, top, platform)
	if err != nil {
		return nil, err
	}
	if _, err := fetch.ReadBlob(ctx, m.Config.Digest); err != nil {
		return nil, err
	}
	if err := s.fetchLayers(ctx, repo, m.Layers, progress); err != nil {
		return nil, err
	}
	var names []string
	if _, ok := named.(reference.Tagged); ok {
		names = append(names, named.String())
	}
	repoDigest := named.Name() + "@" + top.Digest.String()
	img, err := s.Create(ctx, top, names, CreateOptions{RepoDigests: []string{repoDigest}, Platform: opts.Platform})
	if err != nil {
		return nil, err
	}
	progress("", "Digest: "+top.Digest.String(), 0, 0)
	return img, nil
}

// fetchLayers gets the layers the content store lacks, pullConcurrency at
// a time.
func (s *Store) fetchLayers(ctx context.Context, repo *remote.Repository, layers []ocispec.Descriptor, progress Progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, pullConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, l := range layers {
		id := shortDigest(l.Digest)
		if _, err := s.cfg.Content.Info(ctx, l.Digest); err == nil {
			progress(id, "Already exists", 0, 0)
			continue
		}
		progress(id, "Pulling fs layer", 0, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.fetchBlob(ctx, repo, l, func(n int64) { progress(id, "Downloading", n, l.Size) }); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("layer %s: %w", l.Digest, err)
				}
				mu.Unlock()
				cancel()
				return
			}
			progress(id, "Download complete", 0, 0)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, l := range layers {
		progress(shortDigest(l.Digest), "Pull complete", 0, 0)
	}
	return nil
}

// fetchBlob streams one blob from the registry into the content store,
// which verifies its digest and size before committing it. A pull that
// was interrupted (a failed fetch, a killed daemon) left its ingest: the
// rest is asked for with a Range from where it stopped.
func (s *Store) fetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, onRead func(int64)) error {
	w, err := s.cfg.Content.Writer(ctx, "write-"+desc.Digest.String(), desc.Digest, desc.Size)
	if errors.Is(err, content.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	offset := w.Offset()
	rc, partial, err := repo.FetchBlobFrom(ctx, desc, offset)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if offset > 0 && !partial {
		// The registry sent it all: skip what the ingest has.
		if _, err := io.CopyN(io.Discard, r, offset); err != nil {
			return fmt.Errorf("blob %s: skip resumed data: %w", desc.Digest, err)
		}
	}
	if onRead != nil {
		r = &countingProgress{r: r, fn: func(n int64) { onRead(offset + n) }}
	}
	if _, err := io.Copy(w, r); err != nil {
		if errors.Is(err, errdefs.ErrInvalid) {
			w.Abort() // not this blob: nothing worth resuming
		}
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, content.ErrExists) {
		return err
	}
	return nil
}

// fetchingReader reads small blobs (manifests, indexes, configs) from the
// content store, fetching them from the registry first when missing.
type fetchingReader struct {
	s    *Store
	repo *remote.Repository
}

func (f *fetchingReader) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	b, err := f.s.cfg.Content.ReadBlob(ctx, d)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	// The size is not known here; the registry's answer is bounded and
	// verified by digest.
	rc, err := f.repo.FetchBlob(ctx, ocispec.Descriptor{Digest: d})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err = io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifestSize {
		return nil, errdefs.Invalidf("blob %s is larger than %d bytes", d, maxManifestSize)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, errdefs.Invalidf("blob %s: the registry sent content with digest %s", d, got)
	}
	if err := f.s.cfg.Content.WriteBlob(ctx, bytesReader(b), ocispec.Descriptor{Digest: d, Size: int64(len(b))}); err != nil {
		return nil, err
	}
	return b, nil
}

// countingProgress calls fn with the bytes read so far, at most every 512 KiB.
type countingProgress struct {
	r       io.Reader
	fn      func(int64)
	n, last int64
}

func (c *countingProgress) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 512<<10 || err == io.EOF {
		c.last = c.n
		c.fn(c.n)
	}
	return n, err
}

// shortDigest is the 12-hex id Docker's progress shows for a blob.
func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
