package image

import (
	"bytes"
	"encoding/json"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tinyArchive is a small legacy docker-archive: one layer holding one file,
// referenced once directly and once through a symlink.
func tinyArchive(t testing.TB) []byte {
	layerTar := writeTar(t, []entry{{name: "hello.txt", data: []byte("hi")}}).Bytes()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{
			digest.FromBytes(layerTar).String(), digest.FromBytes(layerTar).String()}},
	})
	return writeTar(t, []entry{
		{name: "manifest.json", data: []byte(`[{"Config":"c.json","RepoTags":["tiny:1"],"Layers":["l/layer.tar","l2"]}]`)},
		{name: "c.json", data: cfg},
		{name: "l/layer.tar", data: layerTar},
		{name: "l2", typ: '2', link: "l/layer.tar"},
	}).Bytes()
}

func TestTinyArchive(t *testing.T) {
	s := newStore(t, t.TempDir())
	res, err := s.Load(ctx, bytes.NewReader(tinyArchive(t)))
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := s.Resolve(ctx, "tiny:1")
	if err != nil || img.ID != res[0].ID || len(img.ChainIDs) != 2 {
		t.Fatalf("%+v %v", img, err)
	}
}

// FuzzLoad feeds arbitrary archives to Load: it must never panic, and a
// failed load must leave nothing behind. One store per fuzzing process keeps
// executions cheap; successful loads may add to it, failed ones must not.
func FuzzLoad(f *testing.F) {
	f.Add(tinyArchive(f))
	f.Add([]byte("not a tar"))
	s := newStore(f, f.TempDir())
	f.Fuzz(func(t *testing.T, data []byte) {
		n0, b0, s0 := counts(t, s)
		if _, err := s.Load(ctx, bytes.NewReader(data)); err != nil {
			if n, b, sn := counts(t, s); n != n0 || b != b0 || sn != s0 {
				t.Fatalf("failed load changed the store: images %d→%d, blobs %d→%d, snapshots %d→%d: %v", n0, n, b0, b, s0, sn, err)
			}
		}
	})
}

func ocispecDesc(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}
