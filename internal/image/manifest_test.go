package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

func TestChainIDs(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	got := ChainIDs([]digest.Digest{a, b, c})
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	if got[0] != a || got[1] != ab || got[2] != abc {
		t.Fatalf("%v", got)
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]ocispec.Platform{
		"linux/amd64":    {OS: "linux", Architecture: "amd64"},
		"linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
		"linux/x86_64":   {OS: "linux", Architecture: "amd64"},
		"arm64":          {OS: "linux", Architecture: "arm64"},
	} {
		got, err := ParsePlatform(in)
		if err != nil || got.OS != want.OS || got.Architecture != want.Architecture || got.Variant != want.Variant {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "linux/", "a/b/c/d", "/amd64"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if !MatchPlatform(&ocispec.Platform{OS: "linux", Architecture: "arm64"}, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}) {
		t.Error("arm64 without variant should match v8")
	}
	if MatchPlatform(&ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}) {
		t.Error("arm v6 matched v7")
	}
}

// TestIndexPlatformSelection stores an index with an amd64 and an arm64
// entry (both the busybox manifest, the arm64 one a copy with another
// annotation) and creates from it for each platform.
func TestIndexPlatformSelection(t *testing.T) {
	s := newStore(t, testutil.DataRoot(t))
	res := load(t, s, testutil.BusyboxImage(t, "busybox:latest"))
	img, _, err := s.Resolve(ctx, res[0].ID.String())
	if err != nil {
		t.Fatal(err)
	}
	amd := img.Target
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	put := func(v any, mt string) ocispec.Descriptor {
		data, _ := json.Marshal(v)
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := s.cfg.Content.WriteBlob(ctx, bytes.NewReader(data), d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: amd.MediaType, Digest: digest.FromString("not there"), Size: 10, Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}},
		amd,
	}}
	idx.SchemaVersion = 2
	idesc := put(idx, ocispec.MediaTypeImageIndex)
	got, err := s.Create(ctx, idesc, []string{"multi:1"}, CreateOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || got.Target.Digest != amd.Digest {
		t.Fatalf("selected %s", got.Target.Digest)
	}
	// By the index digest, as a repo digest would be.
	if r, _, err := s.Resolve(ctx, "multi@"+idesc.Digest.String()); err != nil || r.ID != img.ID {
		t.Fatalf("resolve by index digest: %v", err)
	}
	_, err = s.Create(ctx, idesc, nil, CreateOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "riscv64"}})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing platform: %v", err)
	}
	// Schema 1 is refused with a clear message.
	_, err = s.Create(ctx, ocispec.Descriptor{MediaType: MediaTypeDockerSchema1Sig, Digest: digest.FromString("x"), Size: 1}, nil, CreateOptions{})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("schema1: %v", err)
	}
}
