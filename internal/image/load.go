package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	AnnotationContainerdName = "io.containerd.image.name"
	AnnotationRefName        = ocispec.AnnotationRefName
)

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// LoadResult is one image an archive held.
type LoadResult struct {
	ID    digest.Digest
	Names []string // as given in the archive, familiar form
}

// Load reads an image archive — docker-archive (manifest.json, as `docker
// save` writes it, legacy or OCI-layout based) or an OCI image layout tar
// (index.json) — from r and stores its images (`docker load`). Every blob is
// verified against its digest and every layer against the config's diff IDs;
// paths that leave the archive are rejected. On error, blobs and snapshots
// this load added and no image uses are removed again (after success too).
func (s *Store) Load(ctx context.Context, r io.Reader) (results []LoadResult, err error) {
	s.gcMu.RLock()
	locked := true
	defer func() {
		if locked {
			s.gcMu.RUnlock()
		}
	}()
	base := s.cfg.TempDir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(base, "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	a := &archive{s: s, tmp: tmp, files: map[string]archiveFile{}, links: map[string]string{}}
	defer func() {
		// Drop what this load added that no image uses: everything after a
		// failure, and blobs like a docker-archive's own OCI manifest after
		// success. That needs the exclusive lock: give up the shared one.
		s.gcMu.RUnlock()
		locked = false
		a.cleanup(context.WithoutCancel(ctx))
	}()
	if err := a.read(ctx, r); err != nil {
		return nil, err
	}
	if _, ok := a.files["manifest.json"]; ok {
		return a.loadDocker(ctx)
	}
	if _, ok := a.files["index.json"]; ok {
		return a.loadOCI(ctx)
	}
	return nil, errdefs.Invalidf("not an image archive: it has neither manifest.json nor index.json")
}

type archiveFile struct {
	dgst  digest.Digest // set for blobs/<alg>/<hex>, written to content
	spool string        // otherwise: a file under tmp
	size  int64
}

type archive struct {
	s     *Store
	tmp   string
	files map[string]archiveFile
	links map[string]string // symlinks and hard links, resolved to archive paths
	added []digest.Digest   // blobs this load wrote that were not there before
}

var blobPathRe = regexp.MustCompile(`^blobs/([a-z0-9]+)/([a-f0-9]+)$`)

// cleanArchivePath turns a tar entry name into a clean relative archive
// path, or fails if it would leave the archive.
func cleanArchivePath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errdefs.Invalidf("archive path %q is absolute", name)
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errdefs.Invalidf("archive path %q escapes the archive", name)
	}
	return p, nil
}

func (a *archive) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.Invalidf("read image archive: %v", err)
		}
		name, err := cleanArchivePath(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			if strings.HasPrefix(hdr.Linkname, "/") {
				return errdefs.Invalidf("archive link %q points outside the archive", hdr.Name)
			}
			target, err := cleanArchivePath(path.Join(path.Dir(name), hdr.Linkname))
			if err != nil {
				return err
			}
			a.links[name] = target
		case tar.TypeLink:
			target, err := cleanArchivePath(hdr.Linkname)
			if err != nil {
				return err
			}
			a.links[name] = target
		case tar.TypeReg:
			if hdr.Size < 0 {
				return errdefs.Invalidf("archive entry %q has a negative size", hdr.Name)
			}
			if m := blobPathRe.FindStringSubmatch(name); m != nil {
				d := digest.NewDigestFromEncoded(digest.Algorithm(m[1]), m[2])
				if err := d.Validate(); err != nil {
					return errdefs.Invalidf("archive blob %q: %v", hdr.Name, err)
				}
				if err := a.writeBlob(ctx, tr, ocispec.Descriptor{Digest: d, Size: hdr.Size}); err != nil {
					return fmt.Errorf("archive blob %s: %w", name, err)
				}
				a.files[name] = archiveFile{dgst: d, size: hdr.Size}
				continue
			}
			n++
			sp := filepath.Join(a.tmp, strconv.Itoa(n))
			f, err := os.OpenFile(sp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("read archive entry %s: %w", name, err)
			}
			a.files[name] = archiveFile{spool: sp, size: hdr.Size}
		default:
			// Devices, fifos and the like have no place in an image archive.
		}
	}
	return nil
}

func (a *archive) writeBlob(ctx context.Context, r io.Reader, desc ocispec.Descriptor) error {
	cs := a.s.cfg.Content
	if _, err := cs.Info(ctx, desc.Digest); err == nil {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	if err := cs.WriteBlob(ctx, r, desc); err != nil {
		return err
	}
	a.added = append(a.added, desc.Digest)
	return nil
}

// lookup follows links to the file at an archive path.
func (a *archive) lookup(name string) (archiveFile, error) {
	p, err := cleanArchivePath(name)
	if err != nil {
		return archiveFile{}, err
	}
	for range 16 {
		if f, ok := a.files[p]; ok {
			return f, nil
		}
		t, ok := a.links[p]
		if !ok {
			return archiveFile{}, errdefs.Invalidf("archive has no file %q", name)
		}
		p = t
	}
	return archiveFile{}, errdefs.Invalidf("archive file %q: too many links", name)
}

// open returns a reader of an archive file.
func (a *archive) open(ctx context.Context, f archiveFile) (io.ReadCloser, error) {
	if f.dgst != "" {
		return a.s.cfg.Content.Open(ctx, f.dgst)
	}
	return os.Open(f.spool)
}

func (a *archive) readSmall(ctx context.Context, name string) ([]byte, archiveFile, error) {
	f, err := a.lookup(name)
	if err != nil {
		return nil, f, err
	}
	if f.size > maxManifestSize {
		return nil, f, errdefs.Invalidf("archive file %s is too large (%d bytes)", name, f.size)
	}
	rc, err := a.open(ctx, f)
	if err != nil {
		return nil, f, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	return data, f, err
}

// blob makes sure the archive file name is in the content store and returns
// its descriptor.
func (a *archive) blob(ctx context.Context, name, mediaType string) (ocispec.Descriptor, error) {
	f, err := a.lookup(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: f.dgst, Size: f.size}
	if f.dgst == "" {
		// A legacy docker-archive file: hash it, then store it.
		fh, err := os.Open(f.spool)
		if err != nil {
			return desc, err
		}
		dg := digest.Canonical.Digester()
		_, err = io.Copy(dg.Hash(), fh)
		fh.Close()
		if err != nil {
			return desc, err
		}
		desc.Digest = dg.Digest()
		fh, err = os.Open(f.spool)
		if err != nil {
			return desc, err
		}
		err = a.writeBlob(ctx, fh, desc)
		fh.Close()
		if err != nil {
			return desc, err
		}
	}
	return desc, nil
}

func (a *archive) loadDocker(ctx context.Context) ([]LoadResult, error) {
	data, _, err := a.readSmall(ctx, "manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, errdefs.Invalidf("archive manifest.json: %v", err)
	}
	if len(entries) == 0 {
		return nil, errdefs.Invalidf("archive manifest.json lists no images")
	}
	var results []LoadResult
	for _, e := range entries {
		cfgDesc, err := a.blob(ctx, e.Config, MediaTypeDockerConfig)
		if err != nil {
			return results, err
		}
		// A legacy "<hex>.json" config is named by its digest: hold it to it.
		if base := strings.TrimSuffix(path.Base(e.Config), ".json"); isFullID(base) && base != cfgDesc.Digest.Encoded() && !strings.HasPrefix(e.Config, "blobs/") {
			return results, errdefs.Invalidf("archive config %s does not match its digest %s", e.Config, cfgDesc.Digest)
		}
		m := ocispec.Manifest{MediaType: MediaTypeDockerManifest, Config: cfgDesc}
		m.SchemaVersion = 2
		for _, l := range e.Layers {
			desc, err := a.blob(ctx, l, MediaTypeDockerLayer)
			if err != nil {
				return results, err
			}
			if desc.MediaType, err = a.layerMediaType(ctx, desc); err != nil {
				return results, err
			}
			m.Layers = append(m.Layers, desc)
		}
		mdata, err := json.Marshal(m)
		if err != nil {
			return results, err
		}
		mdesc := ocispec.Descriptor{MediaType: MediaTypeDockerManifest, Digest: digest.FromBytes(mdata), Size: int64(len(mdata))}
		if err := a.writeBlob(ctx, bytes.NewReader(mdata), mdesc); err != nil {
			return results, err
		}
		img, err := a.s.create(ctx, mdesc, e.RepoTags, CreateOptions{})
		if err != nil {
			return results, err
		}
		results = append(results, LoadResult{ID: img.ID, Names: e.RepoTags})
	}
	return results, nil
}

// layerMediaType names a docker-archive layer's compression.
func (a *archive) layerMediaType(ctx context.Context, desc ocispec.Descriptor) (string, error) {
	rc, err := a.s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	peek := make([]byte, 8)
	n, _ := io.ReadFull(rc, peek)
	switch layer.DetectCompression(peek[:n]) {
	case layer.Gzip:
		return MediaTypeDockerLayerGzip, nil
	case layer.Zstd:
		return MediaTypeDockerLayerZstd, nil
	default:
		return MediaTypeDockerLayer, nil
	}
}

func (a *archive) loadOCI(ctx context.Context) ([]LoadResult, error) {
	data, _, err := a.readSmall(ctx, "index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, errdefs.Invalidf("archive index.json: %v", err)
	}
	if len(idx.Manifests) == 0 {
		return nil, errdefs.Invalidf("archive index.json lists no images")
	}
	var results []LoadResult
	for _, desc := range idx.Manifests {
		var names []string
		if n := desc.Annotations[AnnotationContainerdName]; n != "" {
			names = append(names, n)
		} else if n := desc.Annotations[AnnotationRefName]; n != "" {
			// A full reference names the image; a bare tag has no repository.
			if _, err := ParseReference(n); err == nil && strings.ContainsAny(n, "/:@") {
				names = append(names, n)
			}
		}
		img, err := a.s.create(ctx, desc, names, CreateOptions{})
		if err != nil {
			return results, err
		}
		var fam []string
		for _, n := range names {
			fam = append(fam, FamiliarName(mustNormal(n)))
		}
		results = append(results, LoadResult{ID: img.ID, Names: fam})
	}
	return results, nil
}

func mustNormal(n string) string {
	if ref, err := ParseReference(n); err == nil {
		return ref.String()
	}
	return n
}

// cleanup removes blobs this load added that no image references.
func (a *archive) cleanup(ctx context.Context) {
	if len(a.added) == 0 {
		return
	}
	a.s.gcMu.Lock()
	defer a.s.gcMu.Unlock()
	blobs, _, err := a.s.references()
	if err != nil {
		return
	}
	for _, d := range a.added {
		if !blobs[d] {
			_ = a.s.cfg.Content.Delete(ctx, d)
		}
	}
}
