package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/reference"
)

// Save writes the images refs name as one tar that is both a docker-archive
// (manifest.json, what `docker load` reads) and an OCI image layout
// (oci-layout, index.json, blobs/sha256/...), like `docker save` of Docker
// 25+. A ref that is a name saves that name; an ID saves all of the image's
// names. Blobs shared by several images are written once.
func (s *Store) Save(ctx context.Context, w io.Writer, refs []string) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	type entry struct {
		img  *Image
		tags []string // normalised
	}
	var entries []entry
	for _, ref := range refs {
		img, name, err := s.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		tags := img.Names
		if name != "" {
			if _, digested := mustParse(name).(reference.Digested); digested {
				tags = nil
			} else {
				tags = []string{name}
			}
		}
		entries = append(entries, entry{img, tags})
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	var dockerManifest []dockerManifestEntry
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	index.SchemaVersion = 2
	for _, e := range entries {
		var m ocispec.Manifest
		if _, err := readJSON(ctx, s.cfg.Content, e.img.Target, &m); err != nil {
			return err
		}
		blobs := append([]ocispec.Descriptor{e.img.Target, m.Config}, m.Layers...)
		for _, b := range blobs {
			if written[b.Digest] {
				continue
			}
			if err := s.writeBlobEntry(ctx, tw, b.Digest); err != nil {
				return err
			}
			written[b.Digest] = true
		}
		de := dockerManifestEntry{Config: blobPath(m.Config.Digest), RepoTags: []string{}}
		for _, l := range m.Layers {
			de.Layers = append(de.Layers, blobPath(l.Digest))
		}
		desc := e.img.Target
		desc.Platform = nil
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range e.tags {
			de.RepoTags = append(de.RepoTags, FamiliarName(t))
			d := desc
			d.Annotations = map[string]string{AnnotationContainerdName: t}
			if tagged, ok := mustParse(t).(reference.Tagged); ok {
				d.Annotations[AnnotationRefName] = tagged.Tag()
			}
			index.Manifests = append(index.Manifests, d)
		}
		dockerManifest = append(dockerManifest, de)
	}
	files := []struct {
		name string
		v    any
	}{
		{"oci-layout", ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{"index.json", index},
		{"manifest.json", dockerManifest},
	}
	for _, f := range files {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func mustParse(name string) reference.Named {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		panic(fmt.Sprintf("stored image name %q does not parse: %v", name, err))
	}
	return ref
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

func (s *Store) writeBlobEntry(ctx context.Context, tw *tar.Writer, d digest.Digest) error {
	info, err := s.cfg.Content.Info(ctx, d)
	if err != nil {
		return err
	}
	rc, err := s.cfg.Content.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d), Mode: 0o644, Size: info.Size, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("save blob %s: %w", d, err)
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
