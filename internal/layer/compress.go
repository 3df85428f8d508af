// Package layer applies layer tarballs to directories and computes layer
// tarballs from directories, safely, with Docker's whiteout conventions.
package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/berth/berth/internal/errdefs"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is a layer's compression format.
type Compression int

// The compressions berth reads and writes.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression tells the compression from a stream's first bytes
// (at least 4 are needed to see zstd). Anything else counts as uncompressed.
func DetectCompression(peek []byte) Compression {
	switch {
	case bytes.HasPrefix(peek, gzipMagic):
		return Gzip
	case bytes.HasPrefix(peek, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress sniffs r's compression and returns a reader of the
// uncompressed bytes. Closing it releases decoder goroutines; it does not
// close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	peek, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("detect compression: %w", err)
	}
	c := DetectCompression(peek)
	switch c {
	case Gzip:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, c, errdefs.Invalidf("gzip layer: %w", err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, errdefs.Invalidf("zstd layer: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

// Compress returns a writer that compresses into w with c. Close flushes
// it (and does not close w). Gzip is parallel (pgzip).
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		zw := pgzip.NewWriter(w)
		if err := zw.SetConcurrency(1<<20, 8); err != nil {
			return nil, err
		}
		return zw, nil
	case Zstd:
		return zstd.NewWriter(w)
	}
	return nil, errdefs.Invalidf("unknown compression %d", int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// Layer media types (OCI image-spec and Docker schema2).
const (
	MediaTypeOCILayer      = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCILayerGzip  = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerZstd  = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeDockerLayer   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeOCINondistPfx = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	mediaTypeDockerUncompr = "application/vnd.docker.image.rootfs.diff.tar"
)

// CompressionOf tells a layer's compression from its media type, or fails
// (errdefs.ErrInvalid) for a media type that is not a layer's.
func CompressionOf(mediaType string) (Compression, error) {
	switch mediaType {
	case MediaTypeOCILayer, mediaTypeOCINondistPfx, mediaTypeDockerUncompr:
		return Uncompressed, nil
	case MediaTypeOCILayerGzip, mediaTypeOCINondistPfx + "+gzip", MediaTypeDockerLayer, MediaTypeDockerForeign:
		return Gzip, nil
	case MediaTypeOCILayerZstd, mediaTypeOCINondistPfx + "+zstd":
		return Zstd, nil
	}
	return Uncompressed, errdefs.Invalidf("not a layer media type: %q", mediaType)
}

// OCIMediaType is the OCI layer media type for c.
func (c Compression) OCIMediaType() string {
	switch c {
	case Gzip:
		return MediaTypeOCILayerGzip
	case Zstd:
		return MediaTypeOCILayerZstd
	}
	return MediaTypeOCILayer
}
