package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var ctx = context.Background()

func newStore(t testing.TB, root string) *Store {
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
	s, err := NewStore(Config{DB: db, Content: cs, Snapshotter: sn, TempDir: filepath.Join(root, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func load(t *testing.T, s *Store, path string) []LoadResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := s.Load(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func counts(t testing.TB, s *Store) (images, blobs, snaps int) {
	t.Helper()
	n, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Content.Walk(ctx, func(content.Info) error { blobs++; return nil })
	s.cfg.Snapshotter.Walk(ctx, func(snapshot.Info) error { snaps++; return nil })
	return n, blobs, snaps
}

func TestLoadResolveTagDelete(t *testing.T) {
	root := testutil.DataRoot(t)
	s := newStore(t, root)
	res := load(t, s, testutil.BusyboxImage(t, "busybox:latest"))
	if len(res) != 1 || len(res[0].Names) != 1 || res[0].Names[0] != "busybox:latest" {
		t.Fatalf("load results %+v", res)
	}
	id := res[0].ID
	img, name, err := s.Resolve(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || name != "docker.io/library/busybox:latest" || len(img.ChainIDs) != 1 {
		t.Fatalf("resolve: %+v %s", img, name)
	}
	if got := strings.Join(img.RepoTags(), ","); got != "busybox:latest" {
		t.Fatalf("RepoTags %s", got)
	}
	if img.Size <= 0 || img.Config == nil || img.Config.OS != "linux" {
		t.Fatalf("image %+v", img)
	}
	if cc := img.ContainerConfig(); len(cc.Cmd) == 0 {
		t.Fatalf("container config %+v", cc)
	}
	for _, ref := range []string{id.String(), id.Encoded(), id.Encoded()[:12], id.Encoded()[:3], "sha256:" + id.Encoded()[:8], "docker.io/library/busybox:latest"} {
		got, _, err := s.Resolve(ctx, ref)
		if err != nil || got.ID != id {
			t.Errorf("resolve %s: %v", ref, err)
		}
	}
	for _, ref := range []string{"nothere", "busybox:other", "ffffffffffff", "sha256:" + strings.Repeat("f", 64)} {
		if _, _, err := s.Resolve(ctx, ref); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("resolve %s: %v, want not found", ref, err)
		}
	}
	if _, _, err := s.Resolve(ctx, "Bad Ref"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad ref: %v", err)
	}

	if err := s.Tag(ctx, "busybox", "mine:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "busybox", "x@sha256:"+strings.Repeat("a", 64)); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("tag with digest: %v", err)
	}
	if err := s.Tag(ctx, "nothere", "y"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tag of missing: %v", err)
	}
	img, _, _ = s.Resolve(ctx, "mine:1")
	if img.ID != id || strings.Join(img.RepoTags(), ",") != "busybox:latest,mine:1" {
		t.Fatalf("after tag: %v", img.RepoTags())
	}
	// By ID with two names: needs force.
	if _, err := s.Delete(ctx, id.String(), false, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rmi by id with two names: %v", err)
	}
	// By name with two names: untag only.
	items, err := s.Delete(ctx, "mine:1", false, nil)
	if err != nil || len(items) != 1 || items[0].Untagged != "mine:1" {
		t.Fatalf("rmi mine:1: %+v %v", items, err)
	}
	if err := s.Untag(ctx, "mine:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("untag gone name: %v", err)
	}
	// In use: conflict.
	inUse := func(string) (string, bool) { return "abcdef0123456789", true }
	if _, err := s.Delete(ctx, "busybox", false, inUse); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("rmi in use: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	items, err = s.Delete(ctx, "busybox", false, nil)
	if err != nil || len(items) != 2 || items[1].Deleted != id.String() {
		t.Fatalf("rmi busybox: %+v %v", items, err)
	}
	if n, b, sn := counts(t, s); n != 0 || b != 0 || sn != 0 {
		t.Fatalf("after rmi: %d images, %d blobs, %d snapshots left", n, b, sn)
	}
}

func TestSharedLayerUnpackedOnce(t *testing.T) {
	root := testutil.DataRoot(t)
	s := newStore(t, root)
	// Two images with the same layer bytes and different configs. (Two
	// testutil archives of one rootfs differ: TarDir records atimes.)
	a := testutil.BusyboxImage(t, "one:latest")
	_, files := archiveFiles(t, a)
	var dm []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(files[dm[0].Config], &cfg)
	cfg["config"].(map[string]any)["Cmd"] = []string{"ls"}
	cfgData, _ := json.Marshal(cfg)
	b := filepath.Join(root, "b.tar")
	os.WriteFile(b, writeTar(t, []entry{
		{name: "manifest.json", data: []byte(`[{"Config":"c.json","RepoTags":["two:latest"],"Layers":["l.tar"]}]`)},
		{name: "c.json", data: cfgData},
		{name: "l.tar", data: files[dm[0].Layers[0]]},
	}).Bytes(), 0o644)
	ra, rb := load(t, s, a), load(t, s, b)
	if ra[0].ID == rb[0].ID {
		t.Fatal("same config for different cmds")
	}
	n, _, snaps := counts(t, s)
	if n != 2 || snaps != 1 {
		t.Fatalf("%d images, %d snapshots; want 2 images sharing 1 snapshot", n, snaps)
	}
	// Deleting one keeps the shared layer for the other.
	if _, err := s.Delete(ctx, "one", false, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, snaps := counts(t, s); snaps != 1 {
		t.Fatalf("shared snapshot removed with one image")
	}
	if _, err := s.Delete(ctx, "two", false, nil); err != nil {
		t.Fatal(err)
	}
	if n, bl, snaps := counts(t, s); n+bl+snaps != 0 {
		t.Fatalf("left: %d images %d blobs %d snapshots", n, bl, snaps)
	}
}

// archiveFiles reads a tar into name → content (regular files only).
func archiveFiles(t *testing.T, path string) (names []string, files map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return archiveFilesFrom(f)
}

func archiveFilesFrom(r io.Reader) (names []string, files map[string][]byte) {
	files = map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		var buf bytes.Buffer
		buf.ReadFrom(tr)
		names = append(names, hdr.Name)
		files[hdr.Name] = buf.Bytes()
	}
	return names, files
}

type entry struct {
	name, link string
	data       []byte
	typ        byte
}

func writeTar(t testing.TB, entries []entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return &buf
}

func TestLoadRejectsTampered(t *testing.T) {
	root := testutil.DataRoot(t)
	good := testutil.BusyboxImage(t, "busybox:latest")
	order, files := archiveFiles(t, good)
	var dm []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		t.Fatal(err)
	}
	layerPath, cfgPath := dm[0].Layers[0], dm[0].Config

	rebuild := func(mut func(files map[string][]byte) []entry) *bytes.Buffer {
		cp := map[string][]byte{}
		for k, v := range files {
			cp[k] = append([]byte(nil), v...)
		}
		extra := mut(cp)
		var es []entry
		for _, n := range order {
			if d, ok := cp[n]; ok {
				es = append(es, entry{name: n, data: d})
			}
		}
		return writeTar(t, append(es, extra...))
	}
	// A legacy archive (manifest.json only) whose layer is not the one the
	// config's diff_ids name: every blob matches its own digest, only the
	// diff ID check can catch it.
	otherLayer := writeTar(t, []entry{{name: "evil", data: []byte("x")}}).Bytes()
	legacyWrongDiff := writeTar(t, []entry{
		{name: "manifest.json", data: []byte(`[{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l/layer.tar"]}]`)},
		{name: "c.json", data: files[cfgPath]},
		{name: "l/layer.tar", data: otherLayer},
	})

	tests := []struct {
		name  string
		in    *bytes.Buffer
		class *errdefs.Class
	}{
		{"blob does not match its digest", rebuild(func(f map[string][]byte) []entry {
			f[layerPath][100] ^= 0xff
			return nil
		}), errdefs.ErrInvalid},
		{"layer does not match diff id", legacyWrongDiff, errdefs.ErrInvalid},
		{"path escapes", rebuild(func(f map[string][]byte) []entry {
			return []entry{{name: "../escape", data: []byte("x")}}
		}), errdefs.ErrInvalid},
		{"absolute path", rebuild(func(f map[string][]byte) []entry {
			return []entry{{name: "/abs", data: []byte("x")}}
		}), errdefs.ErrInvalid},
		{"symlink out of the archive", writeTar(t, []entry{
			{name: "manifest.json", typ: tar.TypeSymlink, link: "../../../../etc/passwd"},
		}), errdefs.ErrInvalid},
		{"absolute symlink", writeTar(t, []entry{
			{name: "manifest.json", typ: tar.TypeSymlink, link: "/etc/passwd"},
		}), errdefs.ErrInvalid},
		{"no manifest", writeTar(t, []entry{{name: "x", data: []byte("y")}}), errdefs.ErrInvalid},
		{"missing layer", rebuild(func(f map[string][]byte) []entry {
			delete(f, layerPath)
			delete(f, "index.json")
			return nil
		}), errdefs.ErrInvalid},
		{"not a tar", bytes.NewBufferString(strings.Repeat("garbage", 200)), errdefs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, filepath.Join(root, strings.ReplaceAll(tt.name, " ", "-")))
			_, err := s.Load(ctx, tt.in)
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, tt.class) {
				t.Fatalf("error %v, want class %v", err, tt.class)
			}
			if n, b, sn := counts(t, s); n+b+sn != 0 {
				t.Fatalf("left behind: %d images, %d blobs, %d snapshots (err %v)", n, b, sn, err)
			}
		})
	}
	_ = digest.FromBytes
}

func TestLegacyArchiveWithSymlinkedLayer(t *testing.T) {
	root := testutil.DataRoot(t)
	s := newStore(t, root)
	_, files := archiveFiles(t, testutil.BusyboxImage(t, "busybox:latest"))
	var dm []dockerManifestEntry
	json.Unmarshal(files["manifest.json"], &dm)
	in := writeTar(t, []entry{
		{name: "abc/", typ: tar.TypeDir},
		{name: "abc/layer.tar", data: files[dm[0].Layers[0]]},
		{name: "def/layer.tar", typ: tar.TypeSymlink, link: "../abc/layer.tar"},
		{name: "cfg.json", data: files[dm[0].Config]},
		{name: "manifest.json", data: []byte(`[{"Config":"cfg.json","RepoTags":["legacy:1"],"Layers":["def/layer.tar"]}]`)},
	})
	res, err := s.Load(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Names[0] != "legacy:1" {
		t.Fatalf("%+v", res)
	}
	if _, _, err := s.Resolve(ctx, "legacy:1"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOCILayout(t *testing.T) {
	root := testutil.DataRoot(t)
	s := newStore(t, root)
	order, files := archiveFiles(t, testutil.BusyboxImage(t, "example.com/bb:v1"))
	var es []entry
	for _, n := range order {
		if n != "manifest.json" {
			es = append(es, entry{name: n, data: files[n]})
		}
	}
	res, err := s.Load(ctx, writeTar(t, es))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Names) != 1 || res[0].Names[0] != "example.com/bb:v1" {
		t.Fatalf("%+v", res)
	}
	img, _, err := s.Resolve(ctx, "example.com/bb:v1")
	if err != nil || img.ID != res[0].ID {
		t.Fatal(err)
	}
}

func TestPrepareRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	t.Run("overlay", func(t *testing.T) { testPrepareRootfs(t, newStore(t, testutil.DataRoot(t))) })
	t.Run("native", func(t *testing.T) { testPrepareRootfs(t, newNativeStore(t, testutil.DataRoot(t))) })
	t.Run("Open", func(t *testing.T) {
		root := testutil.DataRoot(t)
		db, err := metadata.Open(filepath.Join(root, "berth.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		s, driver, err := Open(db, root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if driver != "overlayfs" {
			t.Errorf("driver %s", driver)
		}
		testPrepareRootfs(t, s)
	})
}

func testPrepareRootfs(t *testing.T, s *Store) {
	root := testutil.DataRoot(t)
	res := load(t, s, testutil.BusyboxImage(t, "busybox:latest"))
	target := filepath.Join(root, "rootfs")
	id := res[0].ID.String()
	if err := s.PrepareRootfs(ctx, "c1", id, target, RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(target, "bin/sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("/bin/sh: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "written"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.UnmountRootfs(ctx, "c1", target); err != nil {
		t.Fatal(err)
	}
	if err := s.UnmountRootfs(ctx, "c1", target); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
	// Restart: the same snapshot comes back with the container's changes.
	if err := s.PrepareRootfs(ctx, "c1", id, target, RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "written")); err != nil {
		t.Fatalf("change lost across remount: %v", err)
	}
	if u, err := s.RootfsUsage(ctx, "c1"); err != nil || u <= 0 {
		t.Errorf("usage %d %v", u, err)
	}
	// The image's layer is not writable through the container.
	img, _, _ := s.Resolve(ctx, id)
	if _, err := s.Delete(ctx, "busybox", true, nil); err != nil {
		t.Fatalf("forced rmi: %v", err)
	}
	// The layer snapshot stays while the container stands on it.
	if _, err := s.cfg.Snapshotter.Stat(ctx, img.TopChainID()); err != nil {
		t.Fatalf("layer of a used image removed: %v", err)
	}
	if err := s.UnmountRootfs(ctx, "c1", target); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs(ctx, "c1"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n, b, sn := counts(t, s); n+b+sn != 0 {
		t.Fatalf("after GC: %d images %d blobs %d snapshots", n, b, sn)
	}
}

func newNativeStore(t testing.TB, root string) *Store {
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
	sn, err := snapshot.NewNative(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	s, err := NewStore(Config{DB: db, Content: cs, Snapshotter: sn, TempDir: filepath.Join(root, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGCRemovesLeftovers(t *testing.T) {
	root := testutil.DataRoot(t)
	s := newStore(t, root)
	load(t, s, testutil.BusyboxImage(t, "busybox:latest"))
	img, _, _ := s.Resolve(ctx, "busybox")
	// What a crash mid-unpack leaves: a scratch snapshot, an orphan layer
	// and an unreferenced blob.
	if _, err := s.cfg.Snapshotter.Prepare(ctx, "extract-dead-x", img.TopChainID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cfg.Snapshotter.Prepare(ctx, "tmp", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.Snapshotter.Commit(ctx, "sha256:orphan", "tmp"); err != nil {
		t.Fatal(err)
	}
	orphan := []byte("orphan blob")
	if err := s.cfg.Content.WriteBlob(ctx, bytes.NewReader(orphan), ocispecDesc(orphan)); err != nil {
		t.Fatal(err)
	}
	// A container's snapshot survives GC.
	if _, err := s.cfg.Snapshotter.Prepare(ctx, "container-abc", img.TopChainID()); err != nil {
		t.Fatal(err)
	}
	_, b0, _ := counts(t, s)
	freed, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, b, sn := counts(t, s)
	if n != 1 || b != b0-1 || sn != 2 || freed <= 0 {
		t.Fatalf("after GC: %d images, %d blobs (had %d), %d snapshots, freed %d", n, b, b0, sn, freed)
	}
	if _, err := s.cfg.Snapshotter.Stat(ctx, "container-abc"); err != nil {
		t.Fatal(err)
	}
}
