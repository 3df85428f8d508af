package builtin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/embedmem"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
)

// Name is the built-in image's normalised name.
const Name = "docker.io/library/hello:latest"

// The hello program's platform: hello.gz is built for it (see payload_test.go).
const (
	OS           = "linux"
	Architecture = "amd64"
)

// epoch is every timestamp of the image: the layer's files, the config's
// created time and its history.
var epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

//go:embed hello.gz
var helloGz string

func init() { embedmem.Register(helloGz) }

// Blob is one blob of the built-in image.
type Blob struct {
	Desc ocispec.Descriptor
	Data []byte
}

// Image is the built-in image as blobs, ready for a content store.
type Image struct {
	Manifest Blob // OCI image manifest: the image's target
	Config   Blob // image config; its digest is the image ID
	Layer    Blob // uncompressed layer tar holding /hello
}

// Build returns the built-in image's blobs, the same bytes on every run.
// They are made afresh at each call and not kept: the layer alone is over
// a megabyte, and the daemon needs it only when it creates the image.
func Build() (*Image, error) { return build() }

// Program returns the hello program's executable.
func Program() ([]byte, error) {
	zr, err := gzip.NewReader(strings.NewReader(helloGz))
	if err != nil {
		return nil, fmt.Errorf("built-in hello program: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("built-in hello program: %w", err)
	}
	return b, nil
}

// layerTar is the image's only layer: /hello, mode 0755, owned by 0:0.
func layerTar(program []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     "hello",
		Mode:     0o755,
		Size:     int64(len(program)),
		ModTime:  epoch,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(program); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func blob(mediaType string, data []byte) Blob {
	return Blob{Desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, Data: data}
}

func build() (*Image, error) {
	program, err := Program()
	if err != nil {
		return nil, err
	}
	lt, err := layerTar(program)
	if err != nil {
		return nil, fmt.Errorf("built-in hello layer: %w", err)
	}
	img := &Image{Layer: blob(ocispec.MediaTypeImageLayer, lt)}
	created := epoch
	cfg := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &created,
			Platform: ocispec.Platform{OS: OS, Architecture: Architecture},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{img.Layer.Desc.Digest}},
			History: []ocispec.History{{
				Created:   &created,
				CreatedBy: "COPY hello / # berth built-in image",
				Comment:   "built from berth's internal/hello",
			}},
		},
		Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"/hello"},
		}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	img.Config = blob(ocispec.MediaTypeImageConfig, cb)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.Config.Desc,
		Layers:    []ocispec.Descriptor{img.Layer.Desc},
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	img.Manifest = blob(ocispec.MediaTypeImageManifest, mb)
	img.Manifest.Desc.Platform = &ocispec.Platform{OS: OS, Architecture: Architecture}
	return img, nil
}

// ID is the built-in image's ID (its config digest).
func ID() (digest.Digest, error) {
	img, err := Build()
	if err != nil {
		return "", err
	}
	return img.Config.Desc.Digest, nil
}

// Ensure makes sure the name hello:latest exists, creating the built-in
// image (blobs, unpacked layer, record, name) when the name is absent. It
// reports whether it created it. A hello:latest the user pointed at another
// image is left alone. The engine calls it at every start, so a removed
// hello image comes back on the next daemon start.
func Ensure(ctx context.Context, s *image.Store) (bool, error) {
	if _, _, err := s.Resolve(ctx, Name); err == nil {
		return false, nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return false, err
	}
	if err := Create(ctx, s); err != nil {
		return false, err
	}
	return true, nil
}

// Create stores the built-in image in s and names it hello:latest,
// whatever that name pointed at before.
func Create(ctx context.Context, s *image.Store) error {
	img, err := Build()
	if err != nil {
		return err
	}
	// The blobs are unreferenced until Create records them: a garbage
	// collection in between may take them, so Create finding one missing
	// (NotFound) writes them again and retries.
	var err2 error
	for attempt := 0; attempt < 3; attempt++ {
		if err := writeBlobs(ctx, s, img); err != nil {
			return err
		}
		_, err2 = s.Create(ctx, img.Manifest.Desc, []string{Name}, image.CreateOptions{})
		if !errors.Is(err2, errdefs.ErrNotFound) {
			break
		}
	}
	if err2 != nil {
		return fmt.Errorf("built-in hello image: %w", err2)
	}
	return nil
}

func writeBlobs(ctx context.Context, s *image.Store, img *Image) error {
	release := s.Hold()
	defer release()
	for _, b := range []Blob{img.Layer, img.Config, img.Manifest} {
		if err := s.Content().WriteBlob(ctx, bytes.NewReader(b.Data), b.Desc); err != nil {
			return fmt.Errorf("built-in hello image: %w", err)
		}
	}
	return nil
}
