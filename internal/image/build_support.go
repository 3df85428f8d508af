package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildStepOptions describe one image a Dockerfile step makes.
type BuildStepOptions struct {
	// Parent is the image the step runs on; "" is scratch (no layers).
	Parent string
	// Rootfs is the ID whose root filesystem snapshot (made by PrepareRootfs)
	// holds the step's changes, committed as one new layer; "" adds none
	// (ENV, LABEL, … steps).
	Rootfs string
	// Config is the new image's run configuration.
	Config dockerspec.DockerOCIImageConfig
	// History is the step's history entry; EmptyLayer and Created are set here.
	History ocispec.History
	// Adopt says Rootfs is unmounted and done with: its snapshot becomes the
	// new layer's committed snapshot instead of unpacking the layer again.
	Adopt bool
}

// BuildStep records the image of one build step: Parent's layers, plus the
// changes of Rootfs's snapshot as one new layer if Rootfs is set, with
// Config as its run configuration. The image has no name.
func (s *Store) BuildStep(ctx context.Context, opts BuildStepOptions) (*Image, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	now := time.Now().UTC()
	parent := &Image{}
	var cfg dockerspec.DockerOCIImage
	var layers []ocispec.Descriptor
	if opts.Parent != "" {
		p, _, err := s.Resolve(ctx, opts.Parent)
		if err != nil {
			return nil, err
		}
		parent = p
		var pm ocispec.Manifest
		if _, err := readJSON(ctx, s.cfg.Content, p.Target, &pm); err != nil {
			return nil, err
		}
		layers = append(layers, pm.Layers...)
		cfg = *p.Config
		cfg.RootFS.DiffIDs = append([]digest.Digest(nil), cfg.RootFS.DiffIDs...)
		cfg.History = append([]ocispec.History(nil), cfg.History...)
	} else {
		cfg.Platform = ocispec.Platform{OS: s.cfg.Platform.OS, Architecture: s.cfg.Platform.Architecture, Variant: s.cfg.Platform.Variant}
	}
	cfg.RootFS.Type = "layers"
	h := opts.History
	h.Created = &now
	h.EmptyLayer = opts.Rootfs == ""
	if opts.Rootfs != "" {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pw.CloseWithError(s.diffRootfs(ctx, opts.Rootfs, parent, pw))
		}()
		ldesc, diffID, err := s.writeLayerBlobCompressed(ctx, pr)
		pr.CloseWithError(err)
		<-done
		if err != nil {
			return nil, fmt.Errorf("build step layer: %w", err)
		}
		layers = append(layers, ldesc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		if opts.Adopt {
			chains := ChainIDs(cfg.RootFS.DiffIDs)
			top := chains[len(chains)-1].String()
			if _, err := s.cfg.Snapshotter.Stat(ctx, top); err != nil {
				// On failure create below unpacks the layer as usual.
				_ = s.cfg.Snapshotter.Commit(ctx, top, rootfsKey(opts.Rootfs))
			}
		}
	}
	cfg.Created = &now
	cfg.Config = opts.Config
	cfg.History = append(cfg.History, h)
	cdata, err := json.Marshal(&cfg)
	if err != nil {
		return nil, err
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cdata), Size: int64(len(cdata))}
	if err := s.cfg.Content.WriteBlob(ctx, bytesReader(cdata), cdesc); err != nil {
		return nil, err
	}
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    layers,
	}
	mdata, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mdata), Size: int64(len(mdata))}
	if err := s.cfg.Content.WriteBlob(ctx, bytesReader(mdata), mdesc); err != nil {
		return nil, err
	}
	return s.create(ctx, mdesc, nil, CreateOptions{})
}
