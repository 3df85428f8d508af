package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/testutil"
)

func TestImport(t *testing.T) {
	s := newStore(t, testutil.DataRoot(t))
	rootfs := testutil.BusyboxRootfs(t)
	var plain bytes.Buffer
	if err := testutil.TarDir(&plain, rootfs); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := layer.Compress(&gz, layer.Gzip)
	zw.Write(plain.Bytes())
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", plain.Bytes()}, {"gzip", gz.Bytes()}} {
		cfg := &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
		img, err := s.Import(ctx, bytes.NewReader(tc.data), ImportOptions{Ref: "imported:" + tc.name, Config: cfg})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(img.ChainIDs) != 1 || img.Config.Config.Cmd[0] != "/bin/sh" || img.RepoTags()[0] != "imported:"+tc.name {
			t.Fatalf("%s: %+v", tc.name, img)
		}
	}
	// Both share the one unpacked layer.
	if _, _, sn := counts(t, s); sn != 1 {
		t.Fatalf("%d snapshots", sn)
	}
	// A failed import names nothing and leaves no blob or snapshot.
	var escape bytes.Buffer
	tw := tar.NewWriter(&escape)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	images, blobs, snaps := counts(t, s)
	for name, tc := range map[string]struct {
		data []byte
		opts ImportOptions
	}{
		"garbage":     {[]byte("not a tarball at all, just text........"), ImportOptions{Ref: "failed:1"}},
		"big garbage": {bytes.Repeat([]byte("not a tar "), 1000), ImportOptions{Ref: "failed:1"}},
		"empty":       {nil, ImportOptions{Ref: "failed:1"}},
		"escape":      {escape.Bytes(), ImportOptions{Ref: "failed:1"}},
		"windows":     {plain.Bytes(), ImportOptions{Ref: "failed:1", Platform: &ocispec.Platform{OS: "windows", Architecture: "amd64"}}},
	} {
		if _, err := s.Import(ctx, bytes.NewReader(tc.data), tc.opts); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("import of %s: %v, want Invalid", name, err)
		}
		if i, b, sn := counts(t, s); i != images || b != blobs || sn != snaps {
			t.Errorf("import of %s left images/blobs/snapshots %d/%d/%d, had %d/%d/%d", name, i, b, sn, images, blobs, snaps)
		}
		if _, _, err := s.Resolve(ctx, "failed:1"); err == nil {
			t.Errorf("import of %s named the image", name)
		}
	}
	if _, err := s.Import(ctx, bytes.NewReader(plain.Bytes()), ImportOptions{Ref: "Bad Name"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestCommit(t *testing.T) {
	testutil.RequireRoot(t)
	t.Run("overlay", func(t *testing.T) { testCommit(t, newStore(t, testutil.DataRoot(t))) })
	t.Run("native", func(t *testing.T) { testCommit(t, newNativeStore(t, testutil.DataRoot(t))) })
}

func testCommit(t *testing.T, s *Store) {
	root := testutil.DataRoot(t)
	res := load(t, s, testutil.BusyboxImage(t, "busybox:latest"))
	target := filepath.Join(root, "c1")
	if err := s.PrepareRootfs(ctx, "c1", res[0].ID.String(), target, RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "added"), []byte("new"), 0o644)
	if err := os.Remove(filepath.Join(target, "bin/ls")); err != nil {
		t.Fatal(err)
	}
	if err := s.UnmountRootfs(ctx, "c1", target); err != nil {
		t.Fatal(err)
	}
	img, err := s.Commit(ctx, "c1", res[0].ID.String(), CommitOptions{Ref: "committed:1", Comment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.ChainIDs) != 2 || len(img.Config.History) != 2 || img.Config.Config.Cmd == nil {
		t.Fatalf("committed image %+v", img)
	}
	t2 := filepath.Join(root, "c2")
	if err := s.PrepareRootfs(ctx, "c2", "committed:1", t2, RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	defer s.UnmountRootfs(ctx, "c2", t2)
	if b, err := os.ReadFile(filepath.Join(t2, "added")); err != nil || string(b) != "new" {
		t.Fatalf("added: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(t2, "bin/ls")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bin/ls deleted in the container is back: %v", err)
	}
	if _, err := os.Stat(filepath.Join(t2, "bin/sh")); err != nil {
		t.Fatal(err)
	}
}
