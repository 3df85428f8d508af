package image

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	root := testutil.DataRoot(t)
	a := newStore(t, filepath.Join(root, "a"))
	res := load(t, a, testutil.BusyboxImage(t, "busybox:latest"))
	if err := a.Tag(ctx, "busybox", "example.com/team/bb:v2"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := a.Save(ctx, &buf, []string{res[0].ID.String()}); err != nil {
		t.Fatal(err)
	}
	_, files := archiveFilesFrom(bytes.NewReader(buf.Bytes()))
	var dm []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm) != 1 || len(dm[0].RepoTags) != 2 || dm[0].RepoTags[0] != "busybox:latest" || dm[0].RepoTags[1] != "example.com/team/bb:v2" {
		t.Fatalf("manifest.json %+v", dm)
	}
	for _, f := range []string{"oci-layout", "index.json", dm[0].Config, dm[0].Layers[0]} {
		if _, ok := files[f]; !ok {
			t.Errorf("archive lacks %s", f)
		}
	}
	// Into a fresh store, through both formats.
	for _, drop := range []string{"index.json", "manifest.json"} {
		b := newStore(t, filepath.Join(root, "b-"+drop))
		var es []entry
		for name, data := range files {
			if name != drop {
				es = append(es, entry{name: name, data: data})
			}
		}
		got, err := b.Load(ctx, writeTar(t, es))
		if err != nil {
			t.Fatalf("without %s: %v", drop, err)
		}
		if got[0].ID != res[0].ID {
			t.Fatalf("without %s: ID %s, want %s", drop, got[0].ID, res[0].ID)
		}
		for _, n := range []string{"busybox:latest", "example.com/team/bb:v2"} {
			if img, _, err := b.Resolve(ctx, n); err != nil || img.ID != res[0].ID {
				t.Fatalf("without %s: %s: %v", drop, n, err)
			}
		}
	}
	// A name saves only that name.
	buf.Reset()
	if err := a.Save(ctx, &buf, []string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	_, files = archiveFilesFrom(bytes.NewReader(buf.Bytes()))
	json.Unmarshal(files["manifest.json"], &dm)
	if len(dm[0].RepoTags) != 1 || dm[0].RepoTags[0] != "busybox:latest" {
		t.Fatalf("save by name: %+v", dm)
	}
}
