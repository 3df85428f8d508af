package image

import (
	"context"
	"fmt"
	"io"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/reference"
	"github.com/berth/berth/internal/remote"
)

// Push uploads the image ref names to its registry: every layer and the
// config the registry does not have yet (it is asked first, so a second
// push of a shared layer sends nothing), then the manifest under the tag.
// It returns the manifest's descriptor.
func (s *Store) Push(ctx context.Context, ref string, repo *remote.Repository, progress Progress) (ocispec.Descriptor, error) {
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	named, err := ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return ocispec.Descriptor{}, errdefs.Invalidf("push %s: a tag is needed, not a digest", ref)
	}
	img, _, err := s.Resolve(ctx, named.String())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var m ocispec.Manifest
	body, err := readJSON(ctx, s.cfg.Content, img.Target, &m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	// A repository of the same registry the image came from can lend
	// its blobs (cross-repository mount): nothing is sent for those.
	mountFrom := ""
	for _, rd := range img.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil && reference.Domain(n) == repo.Host() && reference.Path(n) != repo.Name() {
			mountFrom = reference.Path(n)
			break
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pushOne := func(b ocispec.Descriptor) error {
		id := shortDigest(b.Digest)
		has, err := repo.BlobExists(ctx, b.Digest)
		if err != nil {
			return err
		}
		if has {
			progress(id, "Layer already exists", 0, 0)
			return nil
		}
		progress(id, "Preparing", 0, 0)
		open := func() (io.ReadCloser, error) {
			rc, err := s.cfg.Content.Open(ctx, b.Digest)
			if err != nil {
				return nil, err
			}
			return readCloser{Reader: &countingProgress{r: rc, fn: func(n int64) { progress(id, "Pushing", n, b.Size) }}, Closer: rc}, nil
		}
		mounted, err := repo.PushBlob(ctx, b, open, mountFrom)
		if err != nil {
			return err
		}
		if mounted {
			progress(id, "Mounted from "+mountFrom, 0, 0)
			return nil
		}
		progress(id, "Pushed", 0, 0)
		return nil
	}
	// Layers go pushConcurrency at a time; the config after them, and the
	// manifest last, so the registry never holds a manifest whose blobs
	// it lacks.
	if err := pushAll(ctx, cancel, m.Layers, pushOne); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := pushOne(m.Config); err != nil {
		return ocispec.Descriptor{}, err
	}
	target := img.Target
	if target.MediaType == "" { // images made here record it in the manifest only
		target.MediaType = m.MediaType
	}
	if target.MediaType == "" {
		target.MediaType = ocispec.MediaTypeImageManifest
	}
	if err := repo.PushManifest(ctx, tagged.Tag(), target, body); err != nil {
		return ocispec.Descriptor{}, err
	}
	progress("", tagged.Tag()+": digest: "+target.Digest.String(), 0, 0)
	return target, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// pushConcurrency bounds the layers uploaded at once.
const pushConcurrency = 3

// pushAll runs push for every blob, pushConcurrency at a time, and returns
// the first error; cancel (of the ctx push's requests use) stops the
// others.
func pushAll(ctx context.Context, cancel context.CancelFunc, blobs []ocispec.Descriptor, push func(ocispec.Descriptor) error) error {
	sem := make(chan struct{}, pushConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, b := range blobs {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := push(b); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("layer %s: %w", b.Digest, err)
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
