package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// capNetBindService is a v2 security.capability value granting
// CAP_NET_BIND_SERVICE (permitted).
func capNetBindService() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b)
}

// richLayer has every kind of entry and attribute Apply must keep.
func richLayer(root bool) []ent {
	at := func(e ent, mode int64, sec int) ent {
		e.h.Mode = mode
		e.h.ModTime = t0.Add(time.Duration(sec) * time.Second)
		if root {
			e.h.Uid, e.h.Gid = 1000+sec, 2000+sec
		}
		return e
	}
	withX := func(e ent, kv ...string) ent {
		e.h.PAXRecords = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			e.h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
		}
		return e
	}
	ents := []ent{
		at(dir("bin/"), 0o755, 1),
		at(file("bin/busybox", "#!busybox\n"), 0o755, 2),
		at(hardlink("bin/ls", "bin/busybox"), 0o755, 2),
		at(symlink("bin/sh", "busybox"), 0o777, 3),
		at(file("bin/su", "su"), 0o4755, 4),
		at(file("bin/sg", "sg"), 0o2755, 5),
		at(dir("etc/"), 0o750, 6),
		withX(at(file("etc/conf", "key=value\n"), 0o600, 7), "user.berth.test", "v1"),
		at(dir("tmp/"), 0o1777, 8),
		at(dir("run/"), 0o755, 9),
		at(device("run/fifo", tar.TypeFifo, 0, 0), 0o620, 10),
		at(file("empty", ""), 0o400, 11),
		at(dir("ro/"), 0o555, 12),
		at(file("ro/zeros", string(make([]byte, 300<<10))+"end"), 0o644, 13),
	}
	if root {
		ents = append(ents,
			withX(at(file("bin/ping", "ping"), 0o755, 14), "security.capability", capNetBindService(), "trusted.berth", "t"),
			at(device("dev-null", tar.TypeChar, 1, 3), 0o666, 15),
		)
	}
	return ents
}

// tarEntry is a comparable summary of one tar entry.
type tarEntry struct {
	Name, Linkname   string
	Type             byte
	Mode             int64
	Uid, Gid         int
	MTime            int64
	Size             int64
	SHA              string
	Xattrs           map[string]string
	Devmajor, Devmin int64
}

func readTar(t testing.TB, b []byte, withOwners bool) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		e := tarEntry{
			Name: strings.TrimSuffix(h.Name, "/"), Linkname: h.Linkname, Type: h.Typeflag,
			Mode: h.Mode & 0o7777, MTime: h.ModTime.Unix(), Size: int64(len(data)),
			SHA: fmt.Sprintf("%x", sha256.Sum256(data))[:12], Devmajor: h.Devmajor, Devmin: h.Devminor,
		}
		if withOwners {
			e.Uid, e.Gid = h.Uid, h.Gid
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[x] = v
			}
		}
		if e.Type == tar.TypeSymlink || e.Type == tar.TypeLink {
			e.Mode = 0 // not meaningful (symlink) or the target's (hardlink)
			e.MTime = 0
		}
		if e.Type == tar.TypeLink {
			e.Uid, e.Gid = 0, 0
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func diffDirs(t testing.TB, lower, upper string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := DiffDirs(context.Background(), &buf, lower, upper); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func diffOverlay(t testing.TB, upper string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := DiffOverlay(context.Background(), &buf, upper); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	root := os.Geteuid() == 0
	layer := mkTar(t, richLayer(root)...)
	s := newSandbox(t)
	if err := applyBytes(t, s.layer, layer, ApplyOptions{Whiteouts: ApplyWhiteouts, AllowDevices: root}); err != nil {
		t.Fatal(err)
	}
	want := readTar(t, layer, root)

	empty := t.TempDir()
	viaDirs := diffDirs(t, empty, s.layer)
	if d := cmp.Diff(want, readTar(t, viaDirs, root)); d != "" {
		t.Errorf("DiffDirs(empty, applied) differs from the layer (-want +got):\n%s", d)
	}
	viaOverlay := diffOverlay(t, s.layer)
	if d := cmp.Diff(want, readTar(t, viaOverlay, root)); d != "" {
		t.Errorf("DiffOverlay(applied) differs from the layer (-want +got):\n%s", d)
	}

	// Atimes and sub-second precision survive Apply.
	st := lstat(t, filepath.Join(s.layer, "etc/conf"))
	if st.Mtim.Sec != t0.Unix()+7 {
		t.Errorf("mtime %d", st.Mtim.Sec)
	}
	if st := lstat(t, filepath.Join(s.layer, "bin")); st.Mtim.Sec != t0.Unix()+1 {
		t.Errorf("directory mtime %d not kept after children were created", st.Mtim.Sec)
	}
	if a, b := lstat(t, filepath.Join(s.layer, "bin/ls")), lstat(t, filepath.Join(s.layer, "bin/busybox")); a.Ino != b.Ino {
		t.Error("hardlink not kept")
	}

	// diff(apply(diff(x))) == diff(x), byte for byte.
	s2 := newSandbox(t)
	if err := applyBytes(t, s2.layer, viaDirs, ApplyOptions{Whiteouts: ApplyWhiteouts, AllowDevices: root}); err != nil {
		t.Fatal(err)
	}
	if again := diffDirs(t, empty, s2.layer); !bytes.Equal(again, viaDirs) {
		t.Errorf("re-diff differs:\n%s", cmp.Diff(readTar(t, viaDirs, true), readTar(t, again, true)))
	}
	// Identical trees diff to an empty layer.
	if entries := readTar(t, diffDirs(t, s.layer, s2.layer), true); len(entries) != 0 {
		t.Errorf("diff of identical trees: %+v", entries)
	}
}

func TestApplyTimesPrecise(t *testing.T) {
	s := newSandbox(t)
	f := file("f", "x")
	f.h.ModTime = time.Unix(1700000000, 123456789)
	f.h.AccessTime = time.Unix(1600000000, 987654321)
	f.h.Format = tar.FormatPAX
	if err := applyBytes(t, s.layer, mkTar(t, f), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.layer, "f"))
	if st.Mtim.Sec != 1700000000 || st.Mtim.Nsec != 123456789 || st.Atim.Sec != 1600000000 || st.Atim.Nsec != 987654321 {
		t.Fatalf("times: m=%v a=%v", st.Mtim, st.Atim)
	}
}

func TestOwnershipAndIDMap(t *testing.T) {
	testutil.RequireRoot(t)
	f := file("f", "x")
	f.h.Uid, f.h.Gid = 1000, 50
	f.h.Mode = 0o4755
	cases := []struct {
		name             string
		opts             ApplyOptions
		wantUID, wantGID uint32
		wantErr          string
	}{
		{"identity", ApplyOptions{}, 1000, 50, ""},
		{"shifted", ApplyOptions{UIDMap: []IDMap{{0, 100000, 65536}}, GIDMap: []IDMap{{0, 200000, 65536}}}, 101000, 200050, ""},
		{"unmapped", ApplyOptions{UIDMap: []IDMap{{0, 100000, 10}}}, 0, 0, "uid: id 1000 is not mapped"},
		{"nochown", ApplyOptions{NoChown: true}, 0, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			tc.opts.Whiteouts = ApplyWhiteouts
			err := applyBytes(t, s.layer, mkTar(t, f), tc.opts)
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := lstat(t, filepath.Join(s.layer, "f"))
			if st.Uid != tc.wantUID || st.Gid != tc.wantGID || st.Mode&0o7777 != 0o4755 {
				t.Fatalf("uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode)
			}
		})
	}
}

// base is a lower tree: a/x a/y b/1 b/2 c.
func baseLayer(t testing.TB) []byte {
	return mkTar(t, dir("a/"), file("a/x", "x"), file("a/y", "y"), dir("b/"), file("b/1", "1"), dir("b/sub/"), file("b/sub/deep", "d"), file("c", "c"))
}

// whiteoutLayer removes c and a/x, makes b opaque with a new b/3, and keeps
// b/sub (re-created by this layer) but not its old content.
func whiteoutLayer(t testing.TB) []byte {
	return mkTar(t, file(".wh.c", ""), dir("a/"), file("a/.wh.x", ""), dir("b/"), file("b/3", "3"),
		file("b/.wh..wh..opq", ""), dir("b/sub/"), file("b/sub/new", "n"))
}

func listTree(t testing.TB, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		kind := ""
		if fi.Mode()&os.ModeCharDevice != 0 {
			kind = " (whiteout)"
		}
		out = append(out, rel+kind)
		return nil
	})
	return out
}

func TestApplyWhiteouts(t *testing.T) {
	s := newSandbox(t)
	if err := applyBytes(t, s.layer, baseLayer(t), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	if err := applyBytes(t, s.layer, whiteoutLayer(t), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/y", "b", "b/3", "b/sub", "b/sub/new"}
	if d := cmp.Diff(want, listTree(t, s.layer)); d != "" {
		t.Fatalf("tree after whiteouts (-want +got):\n%s", d)
	}
	// aufs metadata entries are skipped, not taken for whiteouts.
	if err := applyBytes(t, s.layer, mkTar(t, dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1.2", "x"), file("a/.wh..wh.aufs", "")), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, listTree(t, s.layer)); d != "" {
		t.Fatalf("tree after aufs metadata (-want +got):\n%s", d)
	}
	// Whiteout of something absent is fine.
	if err := applyBytes(t, s.layer, mkTar(t, file("nothere/.wh.x", ""), file(".wh.gone", "")), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
}

func TestOverlayWhiteouts(t *testing.T) {
	testutil.RequireRoot(t)
	s := newSandbox(t)
	if err := applyBytes(t, s.layer, whiteoutLayer(t), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/x (whiteout)", "b", "b/3", "b/sub", "b/sub/new", "c (whiteout)"}
	if d := cmp.Diff(want, listTree(t, s.layer)); d != "" {
		t.Fatalf("upper after apply (-want +got):\n%s", d)
	}
	if !isOpaque(filepath.Join(s.layer, "b")) {
		t.Fatal("b not opaque")
	}
	// And back: the diff of the upper dir has the same whiteouts.
	got := readTar(t, diffOverlay(t, s.layer), false)
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	wantNames := []string{".wh.c", "a", "a/.wh.x", "b", "b/.wh..wh..opq", "b/3", "b/sub", "b/sub/new"}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Fatalf("DiffOverlay names (-want +got):\n%s", d)
	}
}

// The overlay upper dir Apply makes is what the kernel understands: mounted
// over the base, the merged view is the same as applying both with
// ApplyWhiteouts.
func TestOverlayMountMatchesApply(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.DataRoot(t)
	lower, upper, work, merged := filepath.Join(root, "lower"), filepath.Join(root, "upper"), filepath.Join(root, "work"), filepath.Join(root, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	if err := applyBytes(t, lower, baseLayer(t), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	if err := applyBytes(t, upper, whiteoutLayer(t), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	got := listTree(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/y", "b", "b/3", "b/sub", "b/sub/new"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("merged view (-want +got):\n%s", d)
	}
}

// DiffDirs of a changed copy, applied onto the lower tree, gives the upper
// tree back.
func TestDiffDirsWhiteouts(t *testing.T) {
	lower, upper, result := newSandbox(t).layer, newSandbox(t).layer, newSandbox(t).layer
	for _, d := range []string{lower, upper, result} {
		if err := applyBytes(t, d, baseLayer(t), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(upper, "c"))
	os.Remove(filepath.Join(upper, "a/x"))
	os.WriteFile(filepath.Join(upper, "a/y"), []byte("changed"), 0o644)
	os.RemoveAll(filepath.Join(upper, "b/sub"))
	os.WriteFile(filepath.Join(upper, "b/sub"), []byte("now a file"), 0o644)
	os.Mkdir(filepath.Join(upper, "d"), 0o700)
	os.Symlink("../a/y", filepath.Join(upper, "d/link"))
	// Same size, same second, different content: still detected.
	os.WriteFile(filepath.Join(upper, "b/1"), []byte("9"), 0o644)
	os.Chtimes(filepath.Join(upper, "b/1"), t0, t0)

	diff := diffDirs(t, lower, upper)
	var names []string
	for _, e := range readTar(t, diff, false) {
		names = append(names, e.Name)
	}
	want := []string{".wh.c", "a", "a/.wh.x", "a/y", "b", "b/1", "b/sub", "d", "d/link"}
	if d := cmp.Diff(want, names); d != "" {
		t.Fatalf("DiffDirs names (-want +got):\n%s", d)
	}
	if err := applyBytes(t, result, diff, ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	// Layers carry whole seconds (as Docker's): compare at that precision.
	truncateTimes(t, upper)
	if rest := readTar(t, diffDirs(t, upper, result), false); len(rest) != 0 {
		t.Fatalf("applying the diff did not reproduce upper: %+v", rest)
	}
}

func TestCompression(t *testing.T) {
	layer := mkTar(t, file("a", strings.Repeat("berth ", 10000)), dir("d/"))
	wantID := digest.FromBytes(layer)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := Compress(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(layer)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := DetectCompression(buf.Bytes()); got != c {
				t.Fatalf("detected %v", got)
			}
			r, got, err := Decompress(bytes.NewReader(buf.Bytes()))
			if err != nil || got != c {
				t.Fatalf("Decompress: %v, %v", got, err)
			}
			plain, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(plain, layer) {
				t.Fatal("round trip differs")
			}
			s := newSandbox(t)
			id, size, err := Apply(context.Background(), s.layer, bytes.NewReader(buf.Bytes()), ApplyOptions{Whiteouts: ApplyWhiteouts})
			if err != nil {
				t.Fatal(err)
			}
			if id != wantID || size != int64(len(layer)) {
				t.Fatalf("diffID %s size %d, want %s %d", id, size, wantID, len(layer))
			}
		})
	}
	if DetectCompression(nil) != Uncompressed || DetectCompression([]byte{0x1f}) != Uncompressed {
		t.Fatal("short peek")
	}
}

func TestApplyRejectsGarbage(t *testing.T) {
	s := newSandbox(t)
	for _, b := range [][]byte{
		bytes.Repeat([]byte("x"), 1024),
		{0x1f, 0x8b, 0x08, 0, 0, 0},
		{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3},
	} {
		if err := applyBytes(t, s.layer, b, ApplyOptions{Whiteouts: ApplyWhiteouts}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Apply(%x...) = %v", b[:4], err)
		}
	}
	if err := applyBytes(t, s.layer, nil, ApplyOptions{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("no whiteout mode: %v", err)
	}
	s.assertUntouched(t)
}

// truncateTimes drops the sub-second part of every mtime under root.
func truncateTimes(t testing.TB, root string) {
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		sec := fi.ModTime().Unix()
		ts := []unix.Timespec{{Sec: sec}, {Sec: sec}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

func TestCompressionOf(t *testing.T) {
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		if got, err := CompressionOf(c.OCIMediaType()); err != nil || got != c {
			t.Errorf("CompressionOf(%s) = %v, %v", c.OCIMediaType(), got, err)
		}
	}
	if got, err := CompressionOf(MediaTypeDockerLayer); err != nil || got != Gzip {
		t.Errorf("docker layer: %v %v", got, err)
	}
	if _, err := CompressionOf("application/vnd.oci.image.config.v1+json"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("config media type accepted: %v", err)
	}
}

// Changes made through a real overlay mount (the kernel's own whiteouts and
// opaque directories) come out of DiffOverlay as a layer that, applied onto
// the base with ApplyWhiteouts, gives the merged view back.
func TestDiffOverlayOfKernelChanges(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.DataRoot(t)
	lower, upper, work, merged := filepath.Join(root, "lower"), filepath.Join(root, "upper"), filepath.Join(root, "work"), filepath.Join(root, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	if err := applyBytes(t, lower, baseLayer(t), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(merged, 0)
		}
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(merged, "c")))
	must(os.WriteFile(filepath.Join(merged, "a/y"), []byte("changed"), 0o600))
	must(os.RemoveAll(filepath.Join(merged, "b")))
	must(os.Mkdir(filepath.Join(merged, "b"), 0o711))
	must(os.WriteFile(filepath.Join(merged, "b/new"), []byte("new"), 0o644))
	must(os.Symlink("/etc/shadow", filepath.Join(merged, "link")))
	// (No utimensat here: touching lower files would copy them up.)
	want := readTar(t, diffDirs(t, t.TempDir(), merged), true)
	must(unix.Unmount(merged, 0))
	mounted = false

	layerTar := diffOverlay(t, upper)
	var names []string
	for _, e := range readTar(t, layerTar, false) {
		names = append(names, e.Name)
	}
	wantNames := []string{".wh.c", "a", "a/y", "b", "b/.wh..wh..opq", "b/new", "link"}
	if d := cmp.Diff(wantNames, names); d != "" {
		t.Fatalf("DiffOverlay of the kernel's upper (-want +got):\n%s", d)
	}
	result := filepath.Join(root, "result")
	os.Mkdir(result, 0o755)
	must(applyBytes(t, result, baseLayer(t), ApplyOptions{Whiteouts: ApplyWhiteouts}))
	must(applyBytes(t, result, layerTar, ApplyOptions{Whiteouts: ApplyWhiteouts}))
	got := readTar(t, diffDirs(t, t.TempDir(), result), true)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("base + diff differs from the merged view (-want +got):\n%s", d)
	}
}

// A real root filesystem (busybox, ~400 hardlinks) survives DiffDirs →
// gzip → Apply → DiffDirs byte for byte, and TarDir's archive applies too.
func TestBusyboxRootfsRoundTrip(t *testing.T) {
	rootfs := testutil.BusyboxRootfs(t)
	empty := t.TempDir()
	layerTar := diffDirs(t, empty, rootfs)
	var gz bytes.Buffer
	w, _ := Compress(&gz, Gzip)
	w.Write(layerTar)
	w.Close()
	s := newSandbox(t)
	id, _, err := Apply(context.Background(), s.layer, &gz, ApplyOptions{Whiteouts: ApplyWhiteouts})
	if err != nil {
		t.Fatal(err)
	}
	if id != digest.FromBytes(layerTar) {
		t.Fatalf("diffID %s", id)
	}
	if again := diffDirs(t, empty, s.layer); !bytes.Equal(again, layerTar) {
		t.Fatal("busybox rootfs does not round-trip")
	}
	if _, err := os.Stat(filepath.Join(s.layer, "bin/sh")); err != nil {
		t.Fatal(err)
	}

	var plain bytes.Buffer
	if err := testutil.TarDir(&plain, rootfs); err != nil {
		t.Fatal(err)
	}
	s2 := newSandbox(t)
	if err := applyBytes(t, s2.layer, plain.Bytes(), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	// TarDir zeroes mtimes (reproducible images): compare the trees' names.
	if d := cmp.Diff(listTree(t, s.layer), listTree(t, s2.layer)); d != "" {
		t.Fatalf("TarDir archive applies to a different tree (-diffdirs +tardir):\n%s", d)
	}
}
