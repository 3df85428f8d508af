package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/snapshot"
)

// ImportOptions tunes Import (`docker import`).
type ImportOptions struct {
	Ref      string                           // name to give the image, "" for none
	Config   *dockerspec.DockerOCIImageConfig // run configuration (--change), nil for none
	Message  string                           // history comment (--message)
	Platform *ocispec.Platform                // the image's platform, nil for the store's
}

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd, stored as given) read from r. The layer goes through the
// same unpack as a pulled one. On failure nothing is named and the blobs
// and snapshot it added are removed.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (_ *Image, err error) {
	if err := checkName(opts.Ref); err != nil {
		return nil, err
	}
	platform := s.cfg.Platform
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	if platform.OS != "linux" {
		return nil, errdefs.Invalidf("import: operating system %q is not supported (only linux)", platform.OS)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var added []digest.Digest // blobs this import wrote, removed if it fails
	defer func() {
		if err != nil {
			for _, d := range added {
				s.cfg.Content.Delete(context.WithoutCancel(ctx), d)
			}
		}
	}()
	ldesc, diffID, fresh, err := s.writeLayerBlob(ctx, r)
	if fresh {
		added = append(added, ldesc.Digest)
	}
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}}
	if opts.Config != nil {
		cfg.Config = *opts.Config
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	img, blobs, err := s.writeImageOpts(ctx, &cfg, nil, ldesc, diffID, opts.Ref, CreateOptions{Platform: opts.Platform})
	added = append(added, blobs...)
	return img, err
}

// CommitOptions tunes Commit (`docker commit`).
type CommitOptions struct {
	Ref     string                           // name to give the image, "" for none
	Config  *dockerspec.DockerOCIImageConfig // run configuration; nil keeps the image's
	Comment string
	Author  string
}

// Commit makes an image from container id's root filesystem: the image
// imageID it was made from plus one layer of the container's changes. The
// container should be paused or stopped for a consistent layer.
func (s *Store) Commit(ctx context.Context, id, imageID string, opts CommitOptions) (*Image, error) {
	if err := checkName(opts.Ref); err != nil {
		return nil, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	parent, _, err := s.Resolve(ctx, imageID)
	if err != nil {
		return nil, err
	}
	var pm ocispec.Manifest
	if _, err := readJSON(ctx, s.cfg.Content, parent.Target, &pm); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(s.diffRootfs(ctx, id, parent, pw))
	}()
	ldesc, diffID, err := s.writeLayerBlobCompressed(ctx, pr)
	pr.CloseWithError(err) // unblock the differ if the writer failed
	<-done
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", shortStr(id), err)
	}
	cfg := *parent.Config
	now := time.Now().UTC()
	cfg.Created = &now
	if opts.Config != nil {
		cfg.Config = *opts.Config
	}
	if opts.Author != "" {
		cfg.Author = opts.Author
	}
	cfg.RootFS.DiffIDs = append([]digest.Digest(nil), cfg.RootFS.DiffIDs...)
	cfg.History = append(append([]ocispec.History(nil), cfg.History...), ocispec.History{Created: &now, Author: opts.Author, Comment: opts.Comment})
	return s.writeImage(ctx, &cfg, pm.Layers, ldesc, diffID, opts.Ref)
}

// diffRootfs writes the layer tar of container id's changes to w.
func (s *Store) diffRootfs(ctx context.Context, id string, parent *Image, w io.Writer) error {
	dir, overlayWh, ok := s.cfg.Snapshotter.ApplyDir(rootfsKey(id))
	if !ok {
		return errdefs.NotFoundf("container %s has no root filesystem to commit", shortStr(id))
	}
	if overlayWh {
		return layer.DiffOverlay(ctx, w, dir)
	}
	// A full copy: diff it against a read-only view of the image.
	key := "commit-view-" + randomSuffix()
	mounts, err := s.cfg.Snapshotter.View(ctx, key, parent.TopChainID())
	if err != nil {
		return err
	}
	defer s.cfg.Snapshotter.Remove(context.WithoutCancel(ctx), key)
	lower, err := os.MkdirTemp(s.tempDir(), "commit-")
	if err != nil {
		return err
	}
	defer os.Remove(lower)
	if err := snapshot.MountAll(mounts, lower); err != nil {
		return err
	}
	defer snapshot.Unmount(lower)
	return layer.DiffDirs(ctx, w, lower, dir)
}

func (s *Store) tempDir() string {
	if s.cfg.TempDir == "" {
		return os.TempDir()
	}
	_ = os.MkdirAll(s.cfg.TempDir, 0o700)
	return s.cfg.TempDir
}

// writeLayerBlob stores a layer tarball as it is (compressed or not) and
// returns its descriptor and diff ID; fresh says the content store did not
// have the blob before (the caller removes it if it fails later). A blob
// that is not a (compressed) tar is Invalid.
func (s *Store) writeLayerBlob(ctx context.Context, r io.Reader) (desc ocispec.Descriptor, diffID digest.Digest, fresh bool, err error) {
	w, err := s.cfg.Content.Writer(ctx, "import-"+randomSuffix(), "", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", false, err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return ocispec.Descriptor{}, "", false, fmt.Errorf("read layer: %w", err)
	}
	desc = ocispec.Descriptor{Digest: w.Digest(), Size: w.Offset()}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, content.ErrExists) {
		return desc, "", false, err
	} else if err == nil {
		fresh = true
	}
	// Second pass: the diff ID, reading it as a tar on the way.
	rc, err := s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return desc, "", fresh, err
	}
	defer rc.Close()
	dr, comp, err := layer.Decompress(rc)
	if err != nil {
		return desc, "", fresh, errdefs.Invalidf("layer: %v", err)
	}
	defer dr.Close()
	h := digest.Canonical.Digester()
	tr := tar.NewReader(io.TeeReader(dr, h.Hash()))
	if desc.Size == 0 {
		return desc, "", fresh, errdefs.Invalidf("layer is empty: no tarball was sent")
	}
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return desc, "", fresh, errdefs.Invalidf("layer is not a tar archive: %v", err)
		}
	}
	if _, err := io.Copy(h.Hash(), dr); err != nil { // the end-of-archive padding
		return desc, "", fresh, errdefs.Invalidf("layer: %v", err)
	}
	desc.MediaType = comp.OCIMediaType()
	return desc, h.Digest(), fresh, nil
}

// writeLayerBlobCompressed gzips the layer tar read from r into the content
// store, hashing the uncompressed stream for the diff ID on the way.
func (s *Store) writeLayerBlobCompressed(ctx context.Context, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	w, err := s.cfg.Content.Writer(ctx, "commit-"+randomSuffix(), "", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	zw, err := layer.Compress(w, layer.Gzip)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	h := digest.Canonical.Digester()
	if _, err := io.Copy(io.MultiWriter(zw, h.Hash()), r); err != nil {
		zw.Close()
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: w.Digest(), Size: w.Offset()}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, content.ErrExists) {
		return desc, "", err
	}
	return desc, h.Digest(), nil
}

// writeImage stores config (with diffID appended to its rootfs) and a
// manifest of parentLayers + ldesc, then creates the image named ref.
func (s *Store) writeImage(ctx context.Context, cfg *dockerspec.DockerOCIImage, parentLayers []ocispec.Descriptor, ldesc ocispec.Descriptor, diffID digest.Digest, ref string) (*Image, error) {
	img, _, err := s.writeImageOpts(ctx, cfg, parentLayers, ldesc, diffID, ref, CreateOptions{})
	return img, err
}

// writeImageOpts is writeImage with create options; it also returns the
// blobs (config, manifest) it added to the content store.
func (s *Store) writeImageOpts(ctx context.Context, cfg *dockerspec.DockerOCIImage, parentLayers []ocispec.Descriptor, ldesc ocispec.Descriptor, diffID digest.Digest, ref string, opts CreateOptions) (*Image, []digest.Digest, error) {
	var added []digest.Digest
	put := func(data []byte, mediaType string) (ocispec.Descriptor, error) {
		desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
		_, err := s.cfg.Content.Info(ctx, desc.Digest)
		had := err == nil
		if err := s.cfg.Content.WriteBlob(ctx, bytesReader(data), desc); err != nil {
			return desc, err
		}
		if !had {
			added = append(added, desc.Digest)
		}
		return desc, nil
	}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	cdata, err := json.Marshal(cfg)
	if err != nil {
		return nil, added, err
	}
	cdesc, err := put(cdata, ocispec.MediaTypeImageConfig)
	if err != nil {
		return nil, added, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    append(append([]ocispec.Descriptor(nil), parentLayers...), ldesc),
	}
	mdata, err := json.Marshal(m)
	if err != nil {
		return nil, added, err
	}
	mdesc, err := put(mdata, ocispec.MediaTypeImageManifest)
	if err != nil {
		return nil, added, err
	}
	var names []string
	if ref != "" {
		names = []string{ref}
	}
	img, err := s.create(ctx, mdesc, names, opts)
	return img, added, err
}

// checkName validates a name to give a new image ("" is none).
func checkName(ref string) error {
	if ref == "" {
		return nil
	}
	_, err := ParseReference(ref)
	return err
}
