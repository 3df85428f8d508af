package image_test

// Written by helper B2: concurrent loads, deletes, garbage collection and
// the built-in image on one store must leave a consistent store.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/image/builtin"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/testutil"
)

// b2Tar is a tar of regular files (sorted order is the caller's).
func b2Tar(t testing.TB, files [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f[0], Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// b2Layout writes an OCI image layout tar holding one image named ref whose
// layers are the given (uncompressed) layer tars.
func b2Layout(t testing.TB, ref string, layers ...[]byte) []byte {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	add := func(mt string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = []string{"/bin/true"}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range layers {
		m.Layers = append(m.Layers, add(ocispec.MediaTypeImageLayer, l))
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
	}
	cb, _ := json.Marshal(cfg)
	m.Config = add(ocispec.MediaTypeImageConfig, cb)
	mb, _ := json.Marshal(m)
	md := add(ocispec.MediaTypeImageManifest, mb)
	md.Annotations = map[string]string{image.AnnotationContainerdName: ref}
	ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	for d, b := range blobs {
		put("blobs/sha256/"+d.Encoded(), b)
	}
	put("index.json", ib)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b2Store(t testing.TB, root string) (*image.Store, snapshot.Snapshotter, *content.Store) {
	t.Helper()
	db, err := metadata.Open(filepath.Join(root, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.NewOverlay(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	s, err := image.NewStore(image.Config{DB: db, Content: cs, Snapshotter: sn, TempDir: filepath.Join(root, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	return s, sn, cs
}

// TestConcurrentLoadDeleteGC loads, deletes and collects two images that
// share a base layer from several goroutines at once (with the built-in
// image being ensured meanwhile), then checks the store: every recorded
// image's blobs and snapshots exist, nothing unreferenced is left after a
// final GC, no extraction snapshot leaked, and a rootfs has the right files.
func TestConcurrentLoadDeleteGC(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	root := testutil.DataRoot(t)
	s, sn, cs := b2Store(t, root)

	base := b2Tar(t, [][2]string{{"base", "base"}})
	archives := map[string][]byte{
		"a:1": b2Layout(t, "docker.io/library/a:1", base, b2Tar(t, [][2]string{{"only-a", "a"}})),
		"b:1": b2Layout(t, "docker.io/library/b:1", base, b2Tar(t, [][2]string{{"only-b", "b"}})),
	}

	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				name := []string{"a:1", "b:1"}[(g+i)%2]
				if _, err := s.Load(ctx, bytes.NewReader(archives[name])); err != nil {
					errc <- fmt.Errorf("load %s: %w", name, err)
					return
				}
				if i%3 == 2 {
					if _, err := s.Delete(ctx, name, false, nil); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
						errc <- fmt.Errorf("delete %s: %w", name, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			if _, err := s.GC(ctx); err != nil {
				errc <- fmt.Errorf("gc: %w", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 3; i++ {
			if _, err := builtin.Ensure(ctx, s); err != nil {
				errc <- fmt.Errorf("ensure: %w", err)
				return
			}
			if i < 2 {
				if _, err := s.Delete(ctx, builtin.Name, false, nil); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					errc <- fmt.Errorf("delete hello: %w", err)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// Both images again, then a collection: only what they and hello need
	// may remain.
	for _, name := range []string{"a:1", "b:1"} {
		if _, err := s.Load(ctx, bytes.NewReader(archives[name])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	wantBlobs, wantSnaps := map[digest.Digest]bool{}, map[string]bool{}
	for _, img := range imgs {
		tags = append(tags, img.RepoTags()...)
		wantBlobs[img.ID] = true
		wantBlobs[img.Target.Digest] = true
		for _, c := range img.ChainIDs {
			wantSnaps[c.String()] = true
		}
	}
	if got := strings.Join(tags, ","); len(imgs) != 3 || !strings.Contains(got, "a:1") || !strings.Contains(got, "b:1") || !strings.Contains(got, "hello:latest") {
		t.Fatalf("images after the run: %d %q", len(imgs), got)
	}
	var snaps []string
	sn.Walk(ctx, func(i snapshot.Info) error {
		snaps = append(snaps, i.Name)
		if i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot %s is %s: leaked", i.Name, i.Kind)
		}
		return nil
	})
	// base, a's top, b's top, hello
	if len(snaps) != 4 || len(wantSnaps) != 4 {
		t.Errorf("snapshots %v, want the 4 chains %v", snaps, wantSnaps)
	}
	for c := range wantSnaps {
		if _, err := sn.Stat(ctx, c); err != nil {
			t.Errorf("chain %s: %v", c, err)
		}
	}
	nblobs := 0
	cs.Walk(ctx, func(i content.Info) error { nblobs++; return nil })
	// a, b: config + manifest + own layer; base layer; hello: config, manifest, layer
	if nblobs != 3+3+1+3 {
		t.Errorf("%d blobs in the store, want 10", nblobs)
	}
	for d := range wantBlobs {
		if _, err := cs.Info(ctx, d); err != nil {
			t.Errorf("blob %s: %v", d, err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %d", len(left))
	}

	b, _, err := s.Resolve(ctx, "b:1")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "rootfs")
	if err := s.PrepareRootfs(ctx, "cb", b.ID.String(), target, image.RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	_, errBase := os.Stat(filepath.Join(target, "base"))
	_, errB := os.Stat(filepath.Join(target, "only-b"))
	_, errA := os.Stat(filepath.Join(target, "only-a"))
	if err := s.UnmountRootfs(ctx, "cb", target); err != nil {
		t.Fatal(err)
	}
	if errBase != nil || errB != nil || !errors.Is(errA, os.ErrNotExist) {
		t.Fatalf("b's rootfs: base %v, only-b %v, only-a %v", errBase, errB, errA)
	}
	if err := s.RemoveRootfs(ctx, "cb"); err != nil {
		t.Fatal(err)
	}
}
