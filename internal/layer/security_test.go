package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/malicious/*.tar")

// maliciousCase is one hostile layer. abs is the sandbox's outside dir as
// an absolute path, rel the same seen from inside the layer through "..".
type maliciousCase struct {
	name string
	// tar builds the layer; outside is the absolute path of the sentinel
	// directory the layer aims at.
	tar func(t testing.TB, outside string) []byte
	// wantErr: the layer must be refused, with this text in the error.
	wantErr string
	// check inspects the layer dir after Apply (contained cases).
	check func(t *testing.T, layer, outside string)
	mode  WhiteoutMode
}

// mirror is a directory entry for the absolute path p inside the layer, so
// that a symlink to p resolves (inside the layer) instead of dangling.
func mirror(p string) ent { return dir(strings.TrimPrefix(p, "/") + "/") }

func ents(e ...ent) func(testing.TB, string) []byte {
	return func(t testing.TB, _ string) []byte { return mkTar(t, e...) }
}

var maliciousCases = []maliciousCase{
	{
		name:    "dotdot traversal",
		tar:     ents(file("../../outside/victim", "pwned")),
		wantErr: "path escapes the layer",
	},
	{
		name:    "dotdot traversal deep",
		tar:     ents(dir("a/"), file("a/../../outside/new", "pwned")),
		wantErr: "path escapes the layer",
	},
	{
		name: "absolute path",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, file(outside+"/victim", "pwned"), file("/etc/berth-layer-test-abs", "x"))
		},
		check: func(t *testing.T, layer, outside string) {
			if readFile(t, filepath.Join(layer, outside, "victim")) != "pwned" {
				t.Fatal("absolute path not contained in the layer")
			}
			if exists("/etc/berth-layer-test-abs") {
				os.Remove("/etc/berth-layer-test-abs")
				t.Fatal("wrote /etc on the host")
			}
		},
	},
	{
		name: "dangling absolute symlink as parent",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, symlink("evil", outside), file("evil/victim", "pwned"))
		},
		wantErr: "parent directory: not a directory",
	},
	{
		name:    "dangling relative symlink as parent",
		tar:     ents(symlink("evil", "../../outside"), file("evil/new", "pwned")),
		wantErr: "parent directory: not a directory",
	},
	{
		name: "absolute symlink then write through it",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, mirror(outside), symlink("evil", outside), file("evil/victim", "pwned"), file("evil/new", "pwned"))
		},
		check: func(t *testing.T, layer, outside string) {
			if readFile(t, filepath.Join(layer, outside, "new")) != "pwned" {
				t.Fatal("write through absolute symlink not contained")
			}
		},
	},
	{
		name: "relative symlink escape then write through it",
		tar:  ents(dir("outside/"), symlink("evil", "../../../../../../../../outside"), file("evil/victim", "pwned")),
		check: func(t *testing.T, layer, _ string) {
			if readFile(t, filepath.Join(layer, "outside", "victim")) != "pwned" {
				t.Fatal("relative symlink escape not contained")
			}
		},
	},
	{
		name: "symlink as a deeper parent directory",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, mirror(outside), dir("a/"), symlink("a/b", "../.."+outside), file("a/b/dir/victim2", "pwned"), file("a/b/c/d/new", "pwned"))
		},
		check: func(t *testing.T, layer, outside string) {
			if readFile(t, filepath.Join(layer, outside, "c/d/new")) != "pwned" {
				t.Fatal("write through symlinked parent not contained")
			}
		},
	},
	{
		name: "symlink chain through /proc magic link",
		tar:  ents(dir("proc/self/root/"), symlink("p", "/proc/self/root/"), file("p/x", "pwned")),
		check: func(t *testing.T, layer, _ string) {
			if readFile(t, filepath.Join(layer, "proc/self/root/x")) != "pwned" {
				t.Fatal("/proc path not contained")
			}
		},
	},
	{
		name:    "symlink loop",
		tar:     ents(symlink("a", "b"), symlink("b", "a"), file("a/x", "pwned")),
		wantErr: "parent directory",
	},
	{
		name: "hardlink to an absolute host file",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, hardlink("pw", outside+"/victim"))
		},
		wantErr: "no such file",
	},
	{
		name:    "hardlink to /etc/passwd",
		tar:     ents(hardlink("pw", "/etc/passwd")),
		wantErr: "no such file",
	},
	{
		name:    "hardlink dotdot escape",
		tar:     ents(hardlink("pw", "../outside/victim")),
		wantErr: "escapes the layer",
	},
	{
		name: "hardlink through symlinked dir",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, symlink("evil", outside), hardlink("pw", "evil/victim"))
		},
		wantErr: "through a symlink",
	},
	{
		name:    "hardlink through relative symlinked dir",
		tar:     ents(symlink("evil", "../outside"), hardlink("pw", "evil/victim")),
		wantErr: "through a symlink",
	},
	{
		name: "device nodes skipped",
		tar: ents(dir("dev/"), device("dev/sda", tar.TypeBlock, 8, 0), device("dev/mem", tar.TypeChar, 1, 1),
			device("dev/kmsg", tar.TypeChar, 1, 11), file("ok", "fine")),
		check: func(t *testing.T, layer, _ string) {
			for _, n := range []string{"dev/sda", "dev/mem", "dev/kmsg"} {
				if exists(filepath.Join(layer, n)) {
					t.Fatalf("device %s created with AllowDevices=false", n)
				}
			}
			if readFile(t, filepath.Join(layer, "ok")) != "fine" {
				t.Fatal("rest of the layer not applied")
			}
		},
	},
	{
		name:    "huge sparse file over the limit",
		tar:     func(testing.TB, string) []byte { return sparseTar("huge", 1<<40, 1<<39, []byte("tail")) },
		wantErr: "size limit",
	},
	{
		name:    "regular file claiming 1 TB with no data",
		tar:     func(testing.TB, string) []byte { return append(rawHeader("big", '0', 1<<40), make([]byte, 4096)...) },
		wantErr: "size limit",
	},
	{
		name: "file then dir then symlink at one path",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, mirror(outside), file("p", "1"), dir("p/"), file("p/inner", "2"), symlink("p", outside), file("p/victim", "pwned"))
		},
		check: func(t *testing.T, layer, outside string) {
			if readFile(t, filepath.Join(layer, outside, "victim")) != "pwned" {
				t.Fatal("not contained")
			}
			if st := lstat(t, filepath.Join(layer, "p")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
				t.Fatal("later entry did not win")
			}
		},
	},
	{
		name: "directory replaced by symlink mid-stream",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, dir("outside/"), dir("d/"), file("d/x", "1"), symlink("d", "../outside"), file("d/victim", "pwned"), dir("d/dir/"), file("d/dir/victim2", "pwned"))
		},
		check: func(t *testing.T, layer, _ string) {
			if readFile(t, filepath.Join(layer, "outside", "dir", "victim2")) != "pwned" {
				t.Fatal("not contained")
			}
		},
	},
	{
		name: "whiteout through a symlink",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, mirror(outside), symlink("evil", outside), file("evil/.wh.victim", ""), file("evil/dir/.wh..wh..opq", ""))
		},
		mode: ApplyWhiteouts,
	},
	{
		name:    "whiteout of dotdot",
		tar:     ents(file(".wh..", "")),
		wantErr: "invalid whiteout",
	},
	{
		name:    "whiteout escaping",
		tar:     ents(file("../outside/.wh.victim", "")),
		wantErr: "path escapes the layer",
	},
	{
		name:    "layer root as a symlink",
		tar:     ents(symlink("./", "/")),
		wantErr: "layer root",
	},
	{
		name: "symlink replacing the layer root is impossible, write to dot-slash",
		tar: func(t testing.TB, outside string) []byte {
			return mkTar(t, symlink("x", outside), file("./x/../victim", "inside"))
		},
		check: func(t *testing.T, layer, _ string) {
			if readFile(t, filepath.Join(layer, "victim")) != "inside" {
				t.Fatal("lexical .. not applied inside the layer")
			}
		},
	},
}

func TestMaliciousLayers(t *testing.T) {
	for _, tc := range maliciousCases {
		for _, mode := range []WhiteoutMode{ApplyWhiteouts, OverlayWhiteouts} {
			if tc.mode != 0 && tc.mode != mode {
				continue
			}
			t.Run(tc.name+"/"+modeName(mode), func(t *testing.T) {
				if mode == OverlayWhiteouts && os.Geteuid() != 0 && strings.Contains(tc.name, "whiteout") {
					t.Skip("overlay whiteouts need root")
				}
				s := newSandbox(t)
				layerTar := tc.tar(t, s.outside)
				if *update && mode == ApplyWhiteouts {
					writeCorpus(t, tc.name, tc.tar(t, "/tmp/berth-layer-outside"))
				}
				err := applyBytes(t, s.layer, layerTar, ApplyOptions{Whiteouts: mode, MaxSize: 1 << 30})
				s.assertUntouched(t)
				if tc.wantErr != "" {
					if err == nil {
						t.Fatalf("applied, want error %q", tc.wantErr)
					}
					if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want invalid with %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if tc.check != nil {
					tc.check(t, s.layer, s.outside)
				}
			})
		}
	}
}

func modeName(m WhiteoutMode) string {
	if m == OverlayWhiteouts {
		return "overlay"
	}
	return "apply"
}

func writeCorpus(t *testing.T, name string, b []byte) {
	dir := filepath.Join("testdata", "malicious")
	os.MkdirAll(dir, 0o755)
	n := strings.NewReplacer(" ", "-", "/", "-", ",", "").Replace(name) + ".tar"
	if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A sparse file is written as holes: a 1 GiB claim costs almost no disk.
func TestSparseFileStaysSparse(t *testing.T) {
	s := newSandbox(t)
	const logical = 1 << 30
	if err := applyBytes(t, s.layer, sparseTar("sparse", logical, 1<<29, []byte("middle")), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.layer, "sparse"))
	if st.Size != logical {
		t.Fatalf("size %d, want %d", st.Size, logical)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Fatalf("sparse file uses %d bytes of disk", used)
	}
	f, _ := os.Open(filepath.Join(s.layer, "sparse"))
	defer f.Close()
	b := make([]byte, 6)
	f.ReadAt(b, 1<<29)
	if string(b) != "middle" {
		t.Fatalf("data at offset: %q", b)
	}
	s.assertUntouched(t)
}

// Overlay's private xattrs in a layer (redirects, metacopy, forged opaque
// markers) are dropped; other trusted and security xattrs are kept.
func TestOverlayXattrsNotForged(t *testing.T) {
	testutil.RequireRoot(t)
	s := newSandbox(t)
	f := file("f", "x")
	f.h.PAXRecords = map[string]string{
		"SCHILY.xattr.trusted.overlay.redirect": "/outside",
		"SCHILY.xattr.trusted.overlay.metacopy": "",
		"SCHILY.xattr.user.overlay.opaque":      "y",
		"SCHILY.xattr.trusted.berth":            "kept",
	}
	d := dir("d/")
	d.h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
	if err := applyBytes(t, s.layer, mkTar(t, f, d), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f", "d"} {
		xa, err := listXattrs(filepath.Join(s.layer, p))
		if err != nil {
			t.Fatal(err)
		}
		for k := range xa {
			if isOverlayXattr(k) {
				t.Errorf("%s: forged xattr %s kept", p, k)
			}
		}
	}
	if xa, _ := listXattrs(filepath.Join(s.layer, "f")); xa["trusted.berth"] != "kept" {
		t.Errorf("trusted.berth lost: %v", xa)
	}
}

// Devices are created only with AllowDevices (and root).
func TestDevicesAllowed(t *testing.T) {
	testutil.RequireRoot(t)
	s := newSandbox(t)
	err := applyBytes(t, s.layer, mkTar(t, device("null", tar.TypeChar, 1, 3), device("fifo", tar.TypeFifo, 0, 0)),
		ApplyOptions{Whiteouts: ApplyWhiteouts, AllowDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.layer, "null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Mode&0o777 != 0o666 {
		t.Fatalf("null: mode %o rdev %d", st.Mode, st.Rdev)
	}
	if st := lstat(t, filepath.Join(s.layer, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Fatalf("fifo: mode %o", st.Mode)
	}
}

// The corpus under testdata/malicious (written by -update) must stay
// refused or contained as a whole, whatever the order of cases.
func TestMaliciousCorpusFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "malicious", "*.tar"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := newSandbox(t)
			applyBytes(t, s.layer, b, ApplyOptions{Whiteouts: ApplyWhiteouts, MaxSize: 1 << 30})
			s.assertUntouched(t)
		})
	}
}

// A small compressed input inflating far beyond MaxSize is stopped, whether
// the bulk is a file or junk after the end of the archive.
func TestDecompressionBomb(t *testing.T) {
	zeros := strings.Repeat("\x00", 8<<20)
	for _, tc := range []struct {
		name string
		tar  []byte
	}{
		{"big file", mkTar(t, file("zeros", zeros))},
		{"trailing junk", append(mkTar(t, file("a", "a")), zeros...)},
	} {
		for _, c := range []Compression{Gzip, Zstd} {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				var buf bytes.Buffer
				w, _ := Compress(&buf, c)
				w.Write(tc.tar)
				w.Close()
				if buf.Len() > 1<<20 {
					t.Fatalf("compressed to %d bytes", buf.Len())
				}
				s := newSandbox(t)
				err := applyBytes(t, s.layer, buf.Bytes(), ApplyOptions{Whiteouts: ApplyWhiteouts, MaxSize: 1 << 20})
				if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "size limit") {
					t.Fatalf("err = %v", err)
				}
			})
		}
	}
}

func TestApplyCanceled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Apply(ctx, s.layer, bytes.NewReader(mkTar(t, file("a", "a"))), ApplyOptions{Whiteouts: ApplyWhiteouts})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
