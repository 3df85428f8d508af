package image

import (
	"context"
	"io"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
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
	blobs := append(append([]ocispec.Descriptor{}, m.Layers...), m.Config)
	for _, b := range blobs {
		id := shortDigest(b.Digest)
		has, err := repo.BlobExists(ctx, b.Digest)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		if has {
			progress(id, "Layer already exists", 0, 0)
			continue
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
			return ocispec.Descriptor{}, err
		}
		if mounted {
			progress(id, "Mounted from "+mountFrom, 0, 0)
			continue
		}
		progress(id, "Pushed", 0, 0)
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
