package builtin

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var ctx = context.Background()

// TestBuildIsDeterministic checks the blobs' shape: one uncompressed layer
// holding /hello (0755, 0:0, fixed time) whose digest is its diff ID, and a
// config running /hello for linux/amd64.
func TestBuildIsDeterministic(t *testing.T) {
	a, err := build()
	if err != nil {
		t.Fatal(err)
	}
	b, err := build()
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Desc.Digest != b.Manifest.Desc.Digest || a.Config.Desc.Digest != b.Config.Desc.Digest {
		t.Fatalf("two builds differ: %s/%s vs %s/%s", a.Manifest.Desc.Digest, a.Config.Desc.Digest, b.Manifest.Desc.Digest, b.Config.Desc.Digest)
	}
	for _, bl := range []Blob{a.Layer, a.Config, a.Manifest} {
		if digest.FromBytes(bl.Data) != bl.Desc.Digest || int64(len(bl.Data)) != bl.Desc.Size {
			t.Fatalf("%s: descriptor does not match data", bl.Desc.MediaType)
		}
	}
	tr := tar.NewReader(bytes.NewReader(a.Layer.Data))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "hello" || hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(epoch) {
		t.Fatalf("layer entry: %+v", hdr)
	}
	data, _ := io.ReadAll(tr)
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		t.Fatal("layer's /hello is not an ELF executable")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("layer has more than /hello: %v", err)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(a.Config.Data, &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Cmd, " ") != "/hello" || cfg.OS != OS || cfg.Architecture != Architecture {
		t.Fatalf("config: cmd %q, platform %s/%s", cfg.Config.Cmd, cfg.OS, cfg.Architecture)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != a.Layer.Desc.Digest {
		t.Fatalf("diff IDs %v, layer %s", cfg.RootFS.DiffIDs, a.Layer.Desc.Digest)
	}
	id, err := ID()
	if err != nil || id != a.Config.Desc.Digest {
		t.Fatalf("ID() = %s, %v", id, err)
	}
}

func newStore(t *testing.T, root string, native bool) *image.Store {
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
	var sn snapshot.Snapshotter
	if native {
		sn, err = snapshot.NewNative(filepath.Join(root, "snapshots"))
	} else {
		sn, err = snapshot.NewOverlay(filepath.Join(root, "snapshots"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	s, err := image.NewStore(image.Config{DB: db, Content: cs, Snapshotter: sn, TempDir: filepath.Join(root, "tmp")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEnsure: a fresh data root gets hello:latest, whose root filesystem
// holds a /hello that runs and greets; a second Ensure does nothing; a
// removed hello image comes back; a hello:latest the user retagged stays.
func TestEnsure(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name   string
		native bool
	}{{"overlay", false}, {"native", true}} {
		t.Run(tc.name, func(t *testing.T) {
			root := testutil.DataRoot(t)
			s := newStore(t, root, tc.native)
			created, err := Ensure(ctx, s)
			if err != nil || !created {
				t.Fatalf("Ensure on a fresh root = %v, %v", created, err)
			}
			img, _, err := s.Resolve(ctx, "hello")
			if err != nil {
				t.Fatal(err)
			}
			id, _ := ID()
			if img.ID != id {
				t.Fatalf("hello is %s, want %s", img.ID, id)
			}
			if got := strings.Join(img.RepoTags(), ","); got != "hello:latest" {
				t.Fatalf("RepoTags %q", got)
			}
			if strings.Join(img.Config.Config.Cmd, " ") != "/hello" {
				t.Fatalf("Cmd %q", img.Config.Config.Cmd)
			}

			target := filepath.Join(root, "rootfs")
			if err := s.PrepareRootfs(ctx, "c1", img.ID.String(), target, image.RootfsOptions{}); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(filepath.Join(target, "hello")).Output()
			if uerr := s.UnmountRootfs(ctx, "c1", target); uerr != nil {
				t.Fatal(uerr)
			}
			if err != nil || !strings.Contains(string(out), "Hello from berth!") {
				t.Fatalf("run /hello: %v: %q", err, out)
			}
			if err := s.RemoveRootfs(ctx, "c1"); err != nil {
				t.Fatal(err)
			}

			if created, err := Ensure(ctx, s); err != nil || created {
				t.Fatalf("second Ensure = %v, %v", created, err)
			}

			if _, err := s.Delete(ctx, "hello", false, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Resolve(ctx, "hello"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("after rmi: %v", err)
			}
			if created, err := Ensure(ctx, s); err != nil || !created {
				t.Fatalf("Ensure after rmi = %v, %v", created, err)
			}
			if _, _, err := s.Resolve(ctx, "hello:latest"); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(testutil.BusyboxImage(t, "busybox:latest"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := s.Load(ctx, f); err != nil {
				t.Fatal(err)
			}
			if err := s.Tag(ctx, "busybox", "hello"); err != nil {
				t.Fatal(err)
			}
			if created, err := Ensure(ctx, s); err != nil || created {
				t.Fatalf("Ensure with a user's hello:latest = %v, %v", created, err)
			}
			if got, _, err := s.Resolve(ctx, "hello"); err != nil || got.ID == id {
				t.Fatalf("user's hello:latest was replaced: %v", err)
			}
			mounts, _ := testutil.MountsUnder(root)
			if len(mounts) != 0 {
				t.Fatalf("mounts left: %v", mounts)
			}
			if _, err := os.Stat(target); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		})
	}
}

// TestSaveLoadKeepsID: `save hello` loaded into another data root gives the
// same image ID, name and a /hello that is the embedded program.
func TestSaveLoadKeepsID(t *testing.T) {
	testutil.RequireRoot(t)
	s := newStore(t, testutil.DataRoot(t), false)
	if _, err := Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(ctx, &buf, []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	root2 := testutil.DataRoot(t)
	s2 := newStore(t, root2, false)
	res, err := s2.Load(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ID()
	if len(res) != 1 || res[0].ID != id {
		t.Fatalf("loaded %+v, want %s", res, id)
	}
	img, _, err := s2.Resolve(ctx, "hello:latest")
	if err != nil || img.ID != id {
		t.Fatalf("hello:latest after load: %v", err)
	}
	if created, err := Ensure(ctx, s2); err != nil || created {
		t.Fatalf("Ensure after loading hello = %v, %v", created, err)
	}
	target := filepath.Join(root2, "rootfs")
	if err := s2.PrepareRootfs(ctx, "c", id.String(), target, image.RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	got, rerr := os.ReadFile(filepath.Join(target, "hello"))
	if err := s2.UnmountRootfs(ctx, "c", target); err != nil {
		t.Fatal(err)
	}
	want, _ := Program()
	if rerr != nil || !bytes.Equal(got, want) {
		t.Fatalf("/hello after save/load: %v, %d bytes, want %d", rerr, len(got), len(want))
	}
}
