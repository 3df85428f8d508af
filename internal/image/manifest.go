package image

import (
	"context"
	"encoding/json"
	"runtime"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
)

// Docker's media types (schema2), beside image-spec's OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Sig   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// maxManifestSize bounds manifests, indexes and configs read into memory.
const maxManifestSize = 8 << 20

// IsIndex reports whether mt is an OCI index or Docker manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is an OCI or Docker schema2 image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// DefaultPlatform is the platform images are selected for: linux and this
// binary's architecture.
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// MatchPlatform reports whether an index entry's platform p can run on want.
// A missing variant matches any; arm64's "v8" is its default.
func MatchPlatform(p *ocispec.Platform, want ocispec.Platform) bool {
	if p == nil {
		return false
	}
	if p.OS != want.OS || p.Architecture != want.Architecture {
		return false
	}
	v, w := p.Variant, want.Variant
	if p.Architecture == "arm64" {
		if v == "" {
			v = "v8"
		}
		if w == "" {
			w = "v8"
		}
	}
	return v == "" || w == "" || v == w
}

// ParsePlatform parses "os/arch[/variant]" as `--platform` takes it.
func ParsePlatform(s string) (ocispec.Platform, error) {
	var p ocispec.Platform
	parts := splitN(s, '/')
	switch len(parts) {
	case 1:
		if parts[0] == "linux" {
			return DefaultPlatform(), nil
		}
		p.OS, p.Architecture = "linux", parts[0]
	case 2:
		p.OS, p.Architecture = parts[0], parts[1]
	case 3:
		p.OS, p.Architecture, p.Variant = parts[0], parts[1], parts[2]
	default:
		return p, errdefs.Invalidf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, x := range parts {
		if x == "" {
			return p, errdefs.Invalidf("invalid platform %q: want os/arch[/variant]", s)
		}
	}
	if p.Architecture == "x86_64" {
		p.Architecture = "amd64"
	}
	if p.Architecture == "aarch64" {
		p.Architecture = "arm64"
	}
	return p, nil
}

func splitN(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// blobReader is what manifest resolution reads from (the content store).
type blobReader interface {
	ReadBlob(ctx context.Context, dgst digest.Digest) ([]byte, error)
}

func readJSON(ctx context.Context, cs blobReader, desc ocispec.Descriptor, v any) ([]byte, error) {
	if desc.Size > maxManifestSize {
		return nil, errdefs.Invalidf("%s %s is too large (%d bytes)", desc.MediaType, desc.Digest, desc.Size)
	}
	data, err := cs.ReadBlob(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(data) != desc.Digest {
		return nil, errdefs.Invalidf("blob %s does not match its digest", desc.Digest)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, errdefs.Invalidf("decode %s %s: %v", desc.MediaType, desc.Digest, err)
	}
	return data, nil
}

// manifestFor resolves desc (a manifest, or an index to select from) to the
// image manifest for platform.
func manifestFor(ctx context.Context, cs blobReader, desc ocispec.Descriptor, platform ocispec.Platform) (ocispec.Descriptor, *ocispec.Manifest, error) {
	for depth := 0; depth < 4; depth++ {
		switch {
		case IsManifest(desc.MediaType):
			var m ocispec.Manifest
			if _, err := readJSON(ctx, cs, desc, &m); err != nil {
				return desc, nil, err
			}
			if m.Config.Digest == "" {
				return desc, nil, errdefs.Invalidf("manifest %s has no config", desc.Digest)
			}
			return desc, &m, nil
		case IsIndex(desc.MediaType):
			var idx ocispec.Index
			if _, err := readJSON(ctx, cs, desc, &idx); err != nil {
				return desc, nil, err
			}
			found := false
			for _, m := range idx.Manifests {
				if MatchPlatform(m.Platform, platform) {
					desc, found = m, true
					break
				}
			}
			if !found {
				// A single-entry index without a platform (OCI layouts
				// written by tools) means that one image.
				if len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
					desc, found = idx.Manifests[0], true
				}
			}
			if !found {
				return desc, nil, errdefs.NotFoundf("no image for platform %s/%s in %s", platform.OS, platform.Architecture, desc.Digest)
			}
		case desc.MediaType == MediaTypeDockerSchema1 || desc.MediaType == MediaTypeDockerSchema1Sig:
			return desc, nil, errdefs.Invalidf("image manifest schema 1 is not supported: push the image again with a current Docker or registry")
		default:
			return desc, nil, errdefs.Invalidf("unsupported manifest media type %q", desc.MediaType)
		}
	}
	return desc, nil, errdefs.Invalidf("index nesting too deep at %s", desc.Digest)
}

// readConfig reads an image config.
func readConfig(ctx context.Context, cs blobReader, desc ocispec.Descriptor) (*dockerspec.DockerOCIImage, error) {
	var cfg dockerspec.DockerOCIImage
	if _, err := readJSON(ctx, cs, desc, &cfg); err != nil {
		return nil, err
	}
	if cfg.RootFS.Type != "" && cfg.RootFS.Type != "layers" {
		return nil, errdefs.Invalidf("image config %s: unsupported rootfs type %q", desc.Digest, cfg.RootFS.Type)
	}
	return &cfg, nil
}

// ChainIDs returns the chain ID of each layer prefix: chain[0] = diffIDs[0],
// chain[i] = sha256(chain[i-1] + " " + diffIDs[i]).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

func checkLayers(m *ocispec.Manifest, cfg *dockerspec.DockerOCIImage) error {
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return errdefs.Invalidf("manifest has %d layers but its config lists %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return errdefs.Invalidf("layer digest %q: %v", l.Digest, err)
		}
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return errdefs.Invalidf("diff ID %q: %v", d, err)
		}
	}
	return nil
}
