// Package testsuite is the test suite every snapshotter must pass; each
// implementation's tests call RunTestSuite with its constructor.
package testsuite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/testutil"
)

// NewFunc opens a snapshotter under root.
type NewFunc func(root string) (snapshot.Snapshotter, error)

// RunTestSuite runs the shared snapshotter tests as subtests of t. Tests that
// mount need root; the bookkeeping tests run without it.
func RunTestSuite(t *testing.T, name string, newSnapshotter NewFunc) {
	tests := []struct {
		name string
		root bool
		fn   func(t *testing.T, h *harness)
	}{
		{"Errors", false, testErrors},
		{"RemoveWithChildren", false, testRemoveWithChildren},
		{"StatWalk", false, testStatWalk},
		{"ReopenKeeps", false, testReopen},
		{"ApplyDirNoMount", false, testApplyDirNoMount},
		{"ChainMountCommit", true, testChain},
		{"Views", true, testViews},
		{"ApplyDirWhiteouts", true, testApplyWhiteouts},
		{"Usage", false, testUsage},
		{"DeepChain", true, testDeepChain},
		{"ReopenMount", true, testReopenMount},
		{"KeysAreNotPaths", false, testKeysAreNotPaths},
		{"Concurrent", false, testConcurrent},
	}
	for _, tt := range tests {
		t.Run(name+"/"+tt.name, func(t *testing.T) {
			if tt.root {
				testutil.RequireRoot(t)
			}
			root := testutil.DataRoot(t)
			h := &harness{t: t, root: root, newFn: newSnapshotter}
			h.open()
			t.Cleanup(func() {
				h.sn.Close()
				if tt.root {
					mounts, err := testutil.MountsUnder(root)
					if err == nil && len(mounts) > 0 {
						t.Errorf("left mounted: %v", mounts)
					}
				}
			})
			tt.fn(t, h)
		})
	}
}

type harness struct {
	t     *testing.T
	root  string
	newFn NewFunc
	sn    snapshot.Snapshotter
	n     int
}

func (h *harness) open() {
	h.t.Helper()
	sn, err := h.newFn(filepath.Join(h.root, "snapshots"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.sn = sn
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.sn.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// mount mounts mounts at a fresh directory and returns it; the unmount is
// the returned func.
func (h *harness) mount(mounts []snapshot.Mount) (string, func()) {
	h.t.Helper()
	h.n++
	target := filepath.Join(h.root, fmt.Sprintf("mnt%d", h.n))
	if err := os.Mkdir(target, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, target); err != nil {
		h.t.Fatal(err)
	}
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		if err := snapshot.Unmount(target); err != nil {
			h.t.Error(err)
		}
	}
	h.t.Cleanup(unmount)
	return target, unmount
}

var ctx = context.Background()

// must(f())(t) returns f's value, failing t on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantClass(t *testing.T, what string, err error, class *errdefs.Class) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got %v, want %v", what, err, class)
	}
}

// commitLayer makes committed snapshot name on parent holding files, written
// through ApplyDir (no mount).
func commitLayer(t *testing.T, sn snapshot.Snapshotter, name, parent string, files map[string]string) {
	t.Helper()
	key := "tmp-" + name
	must(sn.Prepare(ctx, key, parent))(t)
	dir, _, ok := sn.ApplyDir(key)
	if !ok {
		t.Fatalf("ApplyDir(%s) not available", key)
	}
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatal(err)
	}
}

func testErrors(t *testing.T, h *harness) {
	sn := h.sn
	_, err := sn.Prepare(ctx, "", "")
	wantClass(t, "empty key", err, errdefs.ErrInvalid)
	_, err = sn.Prepare(ctx, "a", "missing")
	wantClass(t, "missing parent", err, errdefs.ErrNotFound)
	must(sn.Prepare(ctx, "a", ""))(t)
	_, err = sn.Prepare(ctx, "a", "")
	wantClass(t, "duplicate key", err, errdefs.ErrConflict)
	_, err = sn.Prepare(ctx, "b", "a")
	wantClass(t, "active parent", err, errdefs.ErrInvalid)
	if err := sn.Commit(ctx, "L1", "a"); err != nil {
		t.Fatal(err)
	}
	_, err = sn.Mounts(ctx, "L1")
	wantClass(t, "mounts of committed", err, errdefs.ErrInvalid)
	err = sn.Commit(ctx, "L2", "L1")
	wantClass(t, "commit committed", err, errdefs.ErrInvalid)
	must(sn.View(ctx, "v", "L1"))(t)
	err = sn.Commit(ctx, "L3", "v")
	wantClass(t, "commit view", err, errdefs.ErrInvalid)
	must(sn.Prepare(ctx, "c", "L1"))(t)
	err = sn.Commit(ctx, "L1", "c")
	wantClass(t, "commit onto existing name", err, errdefs.ErrConflict)
	err = sn.Remove(ctx, "nope")
	wantClass(t, "remove missing", err, errdefs.ErrNotFound)
	_, err = sn.Stat(ctx, "nope")
	wantClass(t, "stat missing", err, errdefs.ErrNotFound)
	_, err = sn.Usage(ctx, "nope")
	wantClass(t, "usage missing", err, errdefs.ErrNotFound)
	if _, _, ok := sn.ApplyDir("L1"); ok {
		t.Error("ApplyDir of a committed snapshot")
	}
	if _, _, ok := sn.ApplyDir("v"); ok {
		t.Error("ApplyDir of a view")
	}
}

func testRemoveWithChildren(t *testing.T, h *harness) {
	sn := h.sn
	commitLayer(t, sn, "L1", "", map[string]string{"a": "1"})
	commitLayer(t, sn, "L2", "L1", map[string]string{"b": "2"})
	must(sn.Prepare(ctx, "c", "L2"))(t)
	wantClass(t, "remove L1", sn.Remove(ctx, "L1"), errdefs.ErrConflict)
	wantClass(t, "remove L2", sn.Remove(ctx, "L2"), errdefs.ErrConflict)
	for _, k := range []string{"c", "L2", "L1"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	var n int
	if err := sn.Walk(ctx, func(snapshot.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("after removing all: %d left, %v", n, err)
	}
}

func testStatWalk(t *testing.T, h *harness) {
	sn := h.sn
	commitLayer(t, sn, "L1", "", nil)
	must(sn.Prepare(ctx, "act", "L1"))(t)
	must(sn.View(ctx, "view", "L1"))(t)
	want := map[string]snapshot.Info{
		"L1":   {Name: "L1", Kind: snapshot.KindCommitted},
		"act":  {Name: "act", Parent: "L1", Kind: snapshot.KindActive},
		"view": {Name: "view", Parent: "L1", Kind: snapshot.KindView},
	}
	got := map[string]snapshot.Info{}
	err := sn.Walk(ctx, func(i snapshot.Info) error {
		if i.Created.IsZero() {
			t.Errorf("%s: zero Created", i.Name)
		}
		i.Created = want[i.Name].Created
		got[i.Name] = i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
	info := must(sn.Stat(ctx, "act"))(t)
	if info.Parent != "L1" || info.Kind != snapshot.KindActive {
		t.Fatalf("Stat = %+v", info)
	}
}

func testReopen(t *testing.T, h *harness) {
	commitLayer(t, h.sn, "L1", "", map[string]string{"f": "x"})
	must(h.sn.Prepare(ctx, "act", "L1"))(t)
	h.reopen()
	if info := must(h.sn.Stat(ctx, "L1"))(t); info.Kind != snapshot.KindCommitted {
		t.Fatalf("L1 after reopen: %+v", info)
	}
	if info := must(h.sn.Stat(ctx, "act"))(t); info.Parent != "L1" || info.Kind != snapshot.KindActive {
		t.Fatalf("act after reopen: %+v", info)
	}
	// Ids keep counting: a new snapshot must not reuse act's directory.
	must(h.sn.Prepare(ctx, "act2", "L1"))(t)
	d1, _, _ := h.sn.ApplyDir("act")
	d2, _, _ := h.sn.ApplyDir("act2")
	if d1 == d2 {
		t.Fatalf("two snapshots share %s", d1)
	}
}

func testApplyDirNoMount(t *testing.T, h *harness) {
	must(h.sn.Prepare(ctx, "k", ""))(t)
	dir, _, ok := h.sn.ApplyDir("k")
	if !ok || dir == "" {
		t.Fatalf("ApplyDir = %q, %v", dir, ok)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("ApplyDir %s: %v", dir, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testChain(t *testing.T, h *harness) {
	sn := h.sn
	mnt, unmount := h.mount(must(sn.Prepare(ctx, "a", ""))(t))
	for p, data := range map[string]string{"etc/hostname": "one", "keep": "k", "gone": "g", "dir/x": "x"} {
		os.MkdirAll(filepath.Dir(filepath.Join(mnt, p)), 0o755)
		if err := os.WriteFile(filepath.Join(mnt, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unmount()
	if err := sn.Commit(ctx, "L1", "a"); err != nil {
		t.Fatal(err)
	}

	mnt, unmount = h.mount(must(sn.Prepare(ctx, "b", "L1"))(t))
	if got := readFile(t, filepath.Join(mnt, "etc/hostname")); got != "one" {
		t.Fatalf("hostname = %q", got)
	}
	if err := os.Remove(filepath.Join(mnt, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mnt, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "etc/hostname"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	if err := sn.Commit(ctx, "L2", "b"); err != nil {
		t.Fatal(err)
	}

	// A third layer on top, then read everything through a writable mount.
	commitLayer(t, sn, "L3", "L2", map[string]string{"third": "3"})
	mnt, unmount = h.mount(must(sn.Prepare(ctx, "c", "L3"))(t))
	defer unmount()
	for p, want := range map[string]string{"etc/hostname": "two", "keep": "k", "new": "n", "third": "3"} {
		if got := readFile(t, filepath.Join(mnt, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"gone", "dir"} {
		if _, err := os.Lstat(filepath.Join(mnt, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still visible: %v", p, err)
		}
	}
	// Writes to the active snapshot do not reach its parents.
	if err := os.WriteFile(filepath.Join(mnt, "keep"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	vmnt, vunmount := h.mount(must(sn.View(ctx, "v", "L3"))(t))
	defer vunmount()
	if got := readFile(t, filepath.Join(vmnt, "keep")); got != "k" {
		t.Errorf("parent changed through child: keep = %q", got)
	}
}

func testViews(t *testing.T, h *harness) {
	sn := h.sn
	commitLayer(t, sn, "L1", "", map[string]string{"a": "1"})
	commitLayer(t, sn, "L2", "L1", map[string]string{"b": "2"})
	for _, tc := range []struct {
		parent string
		files  []string
	}{{"", nil}, {"L1", []string{"a"}}, {"L2", []string{"a", "b"}}} {
		mnt, unmount := h.mount(must(sn.View(ctx, "view-"+tc.parent, tc.parent))(t))
		for _, f := range tc.files {
			if _, err := os.Stat(filepath.Join(mnt, f)); err != nil {
				t.Errorf("view of %q: %v", tc.parent, err)
			}
		}
		err := os.WriteFile(filepath.Join(mnt, "w"), nil, 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("view of %q writable: %v", tc.parent, err)
		}
		unmount()
		// Mounts gives the same again.
		mnt, unmount = h.mount(must(sn.Mounts(ctx, "view-"+tc.parent))(t))
		unmount()
		_ = mnt
		if err := sn.Remove(ctx, "view-"+tc.parent); err != nil {
			t.Fatal(err)
		}
	}
}

// testApplyWhiteouts unpacks a layer that deletes a file and makes a
// directory opaque through ApplyDir, with the whiteout mode it asks for.
func testApplyWhiteouts(t *testing.T, h *harness) {
	sn := h.sn
	commitLayer(t, sn, "L1", "", map[string]string{"del": "d", "opq/old": "o", "keep": "k"})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hd := range []*tar.Header{
		{Name: ".wh.del", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "opq/new", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(hd); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	must(sn.Prepare(ctx, "k", "L1"))(t)
	dir, overlayWh, ok := sn.ApplyDir("k")
	if !ok {
		t.Fatal("no ApplyDir")
	}
	mode := layer.ApplyWhiteouts
	if overlayWh {
		mode = layer.OverlayWhiteouts
	}
	if _, _, err := layer.Apply(ctx, dir, &buf, layer.ApplyOptions{Whiteouts: mode}); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "L2", "k"); err != nil {
		t.Fatal(err)
	}
	mnt, unmount := h.mount(must(sn.View(ctx, "v", "L2"))(t))
	defer unmount()
	var names []string
	filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != mnt {
			rel, _ := filepath.Rel(mnt, p)
			names = append(names, rel)
		}
		return nil
	})
	if got, want := strings.Join(names, " "), "keep opq opq/new"; got != want {
		t.Fatalf("tree = %q, want %q", got, want)
	}
}

func testUsage(t *testing.T, h *harness) {
	sn := h.sn
	commitLayer(t, sn, "L1", "", map[string]string{"big": strings.Repeat("x", 1<<20)})
	commitLayer(t, sn, "L2", "L1", map[string]string{"small": "s"})
	u1 := must(sn.Usage(ctx, "L1"))(t)
	if u1 < 1<<20 {
		t.Errorf("usage of L1 = %d, want >= 1 MiB", u1)
	}
	must(sn.Prepare(ctx, "act", "L2"))(t)
	dir, _, _ := sn.ApplyDir("act")
	if err := os.WriteFile(filepath.Join(dir, "more"), []byte(strings.Repeat("y", 256<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if u := must(sn.Usage(ctx, "act"))(t); u < 256<<10 {
		t.Errorf("usage of act = %d, want >= 256 KiB", u)
	}
}

// testDeepChain stacks more layers than fit one page of overlay options
// (mounted through fsconfig's "lowerdir+").
func testDeepChain(t *testing.T, h *harness) {
	sn := h.sn
	// Enough layers that their directories overflow a page of options,
	// whatever the length of the test's temporary directory.
	must(sn.Prepare(ctx, "measure", ""))(t)
	dir, _, _ := sn.ApplyDir("measure")
	if err := sn.Remove(ctx, "measure"); err != nil {
		t.Fatal(err)
	}
	n := min(os.Getpagesize()/(len(dir)+1)+8, 400)
	parent := ""
	for i := range n {
		name := fmt.Sprintf("sha256:%064d", i)
		commitLayer(t, sn, name, parent, map[string]string{fmt.Sprintf("f%d", i): fmt.Sprint(i)})
		parent = name
	}
	mounts := must(sn.Prepare(ctx, "top", parent))(t)
	if m := mounts[0]; m.Type == "overlay" && len(strings.Join(m.Options, ",")) < os.Getpagesize() {
		t.Errorf("options of %d layers fit a page: the test no longer exercises long option strings", n)
	}
	mnt, unmount := h.mount(mounts)
	defer unmount()
	for i := range n {
		if got := readFile(t, filepath.Join(mnt, fmt.Sprintf("f%d", i))); got != fmt.Sprint(i) {
			t.Fatalf("f%d = %q", i, got)
		}
	}
}

func testReopenMount(t *testing.T, h *harness) {
	commitLayer(t, h.sn, "L1", "", map[string]string{"f": "x"})
	must(h.sn.Prepare(ctx, "act", "L1"))(t)
	h.reopen()
	mnt, unmount := h.mount(must(h.sn.Mounts(ctx, "act"))(t))
	defer unmount()
	if got := readFile(t, filepath.Join(mnt, "f")); got != "x" {
		t.Fatalf("f = %q", got)
	}
}

// testKeysAreNotPaths: keys and names are database keys, never file names,
// so a key that looks like a path creates nothing outside the root.
func testKeysAreNotPaths(t *testing.T, h *harness) {
	for _, key := range []string{"../../escape", "/abs/key", "a/../../b"} {
		must(h.sn.Prepare(ctx, key, ""))(t)
		if err := h.sn.Commit(ctx, key+"-c", key); err != nil {
			t.Fatal(err)
		}
		if err := h.sn.Remove(ctx, key+"-c"); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(h.root, "..", "escape"), "/abs/key", filepath.Join(h.root, "b")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created", p)
		}
	}
}

func testConcurrent(t *testing.T, h *harness) {
	commitLayer(t, h.sn, "base", "", map[string]string{"f": "x"})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i)
			if _, err := h.sn.Prepare(ctx, key, "base"); err != nil {
				errs <- err
				return
			}
			// All race to commit the same name: exactly one wins.
			if err := h.sn.Commit(ctx, "same", key); err != nil && !errors.Is(err, errdefs.ErrConflict) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var committed, active int
	h.sn.Walk(ctx, func(i snapshot.Info) error {
		switch {
		case i.Name == "same" && i.Kind == snapshot.KindCommitted:
			committed++
		case i.Kind == snapshot.KindActive:
			active++
		}
		return nil
	})
	if committed != 1 || active != 7 {
		t.Fatalf("committed %d, active %d; want 1 and 7", committed, active)
	}
}
