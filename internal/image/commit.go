package image

import (
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
	Ref     string                           // name to give the image, "" for none
	Config  *dockerspec.DockerOCIImageConfig // run configuration (--change), nil for none
	Message string                           // history comment (--message)
}

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd) read from r.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	if err := checkName(opts.Ref); err != nil {
		return nil, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	ldesc, diffID, err := s.writeLayerBlob(ctx, r)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: s.cfg.Platform.OS, Architecture: s.cfg.Platform.Architecture, Variant: s.cfg.Platform.Variant},
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
	return s.writeImage(ctx, &cfg, nil, ldesc, diffID, opts.Ref)
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
// returns its descriptor and diff ID.
func (s *Store) writeLayerBlob(ctx context.Context, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	w, err := s.cfg.Content.Writer(ctx, "import-"+randomSuffix(), "", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("read layer: %w", err)
	}
	desc := ocispec.Descriptor{Digest: w.Digest(), Size: w.Offset()}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, content.ErrExists) {
		return desc, "", err
	}
	// Second pass: the diff ID (unpacking checks it is a tar).
	rc, err := s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return desc, "", err
	}
	defer rc.Close()
	dr, comp, err := layer.Decompress(rc)
	if err != nil {
		return desc, "", errdefs.Invalidf("layer: %v", err)
	}
	defer dr.Close()
	h := digest.Canonical.Digester()
	if _, err := io.Copy(h.Hash(), dr); err != nil {
		return desc, "", errdefs.Invalidf("layer: %v", err)
	}
	desc.MediaType = comp.OCIMediaType()
	return desc, h.Digest(), nil
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
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	cdata, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cdata), Size: int64(len(cdata))}
	if err := s.cfg.Content.WriteBlob(ctx, bytesReader(cdata), cdesc); err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    append(append([]ocispec.Descriptor(nil), parentLayers...), ldesc),
	}
	mdata, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mdata), Size: int64(len(mdata))}
	if err := s.cfg.Content.WriteBlob(ctx, bytesReader(mdata), mdesc); err != nil {
		return nil, err
	}
	var names []string
	if ref != "" {
		names = []string{ref}
	}
	return s.create(ctx, mdesc, names, CreateOptions{})
}

// checkName validates a name to give a new image ("" is none).
func checkName(ref string) error {
	if ref == "" {
		return nil
	}
	_, err := ParseReference(ref)
	return err
}
