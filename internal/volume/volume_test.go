package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/testutil"
)

func newService(t *testing.T) (*Service, Store, string) {
	t.Helper()
	dir := testutil.DataRoot(t)
	root := filepath.Join(dir, "volumes")
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := MetadataStore{DB: db}
	s, err := New(context.Background(), root, st, events.New())
	if err != nil {
		t.Fatal(err)
	}
	return s, st, root
}

func TestCreateInspectReopen(t *testing.T) {
	s, st, root := newService(t)
	ctx := context.Background()
	v, err := s.Create(ctx, "data", "", nil, map[string]string{"tier": "db"})
	if err != nil {
		t.Fatal(err)
	}
	api := s.API(v)
	if api.Driver != "local" || api.Scope != "local" || api.Mountpoint != filepath.Join(root, "data", "_data") || api.Labels["tier"] != "db" {
		t.Fatalf("api = %+v", api)
	}
	if fi, err := os.Stat(api.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	again, err := s.Create(ctx, "data", "local", nil, nil)
	if err != nil || again != v {
		t.Fatalf("creating an existing name must return it: %v", err)
	}
	if _, err := s.Create(ctx, "data", "local", map[string]string{"type": "tmpfs", "device": "tmpfs"}, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("same name, other options: %v", err)
	}
	s2, err := New(ctx, root, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("data"); err != nil {
		t.Fatalf("volume lost across a restart: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name, driver string
		opts         map[string]string
		class        *errdefs.Class
		want         string
	}{
		{"a", "", nil, errdefs.ErrInvalid, "invalid characters"},
		{"../x", "", nil, errdefs.ErrInvalid, "invalid characters"},
		{"/abs", "", nil, errdefs.ErrInvalid, "use absolute path"},
		{"v1", "nfsplugin", nil, errdefs.ErrNotFound, `plugin "nfsplugin" not found`},
		{"v2", "", map[string]string{"colour": "red"}, errdefs.ErrInvalid, `invalid option key: "colour"`},
		{"v3", "", map[string]string{"device": "/dev/sda"}, errdefs.ErrInvalid, `missing "type"`},
	}
	for _, tt := range tests {
		_, err := s.Create(ctx, tt.name, tt.driver, tt.opts, nil)
		if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Create(%q): %v, want %v containing %q", tt.name, err, tt.class, tt.want)
		}
	}
}

func TestInUseCannotBeRemoved(t *testing.T) {
	s, _, root := newService(t)
	ctx := context.Background()
	s.Create(ctx, "data", "", nil, nil)
	if _, err := s.Mount(ctx, "data", "c1"); err != nil {
		t.Fatal(err)
	}
	err := s.Remove(ctx, "data", false)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "volume is in use - [c1]") {
		t.Fatalf("remove in use: %v", err)
	}
	if l, _ := s.List(ctx, map[string][]string{"dangling": {"true"}}); len(l) != 0 {
		t.Fatal("a volume in use is not dangling")
	}
	s.Unmount(ctx, "data", "c1")
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); !os.IsNotExist(err) {
		t.Fatal("volume directory left behind")
	}
	if err := s.Remove(ctx, "data", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Fatalf("forced remove of a missing volume: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	s.Create(ctx, "web-data", "", nil, map[string]string{"app": "web"})
	s.Create(ctx, "db-data", "", nil, map[string]string{"app": "db"})
	s.Mount(ctx, "db-data", "c1")
	names := func(f map[string][]string) string {
		l, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, v := range l {
			n = append(n, v.Name)
		}
		return strings.Join(n, ",")
	}
	for f, want := range map[string]string{
		"":               "db-data,web-data",
		"name=web":       "web-data",
		"label=app":      "db-data,web-data",
		"label=app=db":   "db-data",
		"dangling=true":  "web-data",
		"dangling=false": "db-data",
	} {
		filters := map[string][]string{}
		if f != "" {
			k, v, _ := strings.Cut(f, "=")
			filters[k] = []string{v}
		}
		if got := names(filters); got != want {
			t.Errorf("filter %q: %s, want %s", f, got, want)
		}
	}
	if _, err := s.List(ctx, map[string][]string{"dangling": {"maybe"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad dangling value: %v", err)
	}
}

func TestPrune(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	named, _ := s.Create(ctx, "keep", "", nil, nil)
	anon, _ := s.Create(ctx, "", "", nil, nil)
	used, _ := s.Create(ctx, "", "", nil, nil)
	s.Mount(ctx, used.Name, "c1")
	os.WriteFile(filepath.Join(s.dataDir(anon.Name), "f"), make([]byte, 1000), 0o644)
	r, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.VolumesDeleted) != 1 || r.VolumesDeleted[0] != anon.Name || r.SpaceReclaimed != 1000 {
		t.Fatalf("prune = %+v: only the unused anonymous volume goes", r)
	}
	r, _ = s.Prune(ctx, map[string][]string{"all": {"true"}})
	if len(r.VolumesDeleted) != 1 || r.VolumesDeleted[0] != named.Name {
		t.Fatalf("prune all = %+v", r)
	}
}

func TestDeviceVolumeMountsAtFirstUse(t *testing.T) {
	testutil.RequireRoot(t)
	s, _, _ := newService(t)
	ctx := context.Background()
	s.Create(ctx, "scratch", "", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,nodev"}, nil)
	p1, err := s.Mount(ctx, "scratch", "c1")
	if err != nil {
		t.Fatal(err)
	}
	s.Mount(ctx, "scratch", "c2")
	mounts, _ := testutil.MountsUnder(p1)
	if len(mounts) != 1 {
		t.Fatalf("want one tmpfs mount for two users, got %v", mounts)
	}
	s.Unmount(ctx, "scratch", "c1")
	if m, _ := testutil.MountsUnder(p1); len(m) != 1 {
		t.Fatal("unmounted while c2 still uses it")
	}
	s.Unmount(ctx, "scratch", "c2")
	if m, _ := testutil.MountsUnder(p1); len(m) != 0 {
		t.Fatalf("still mounted after the last user: %v", m)
	}
}
