package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry to build; data is a regular file's content.
type ent struct {
	h    tar.Header
	data string
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func file(name, data string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: t0}, data: data}
}
func dir(name string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t0}}
}
func symlink(name, target string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: t0}}
}
func hardlink(name, target string) ent {
	return ent{h: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: t0}}
}
func device(name string, typ byte, major, minor int64) ent {
	return ent{h: tar.Header{Name: name, Typeflag: typ, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: t0}}
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if h.Format == tar.FormatUnknown && len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a temp dir holding the layer dir and a sentinel tree outside
// it that no layer may touch.
type sandbox struct {
	base, layer, outside string
	before               string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	base := t.TempDir()
	removable(t, base)
	s := &sandbox{base: base, layer: filepath.Join(base, "layer"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.layer, s.outside, filepath.Join(s.outside, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(s.outside, "victim"), []byte("precious"), 0o644)
	os.WriteFile(filepath.Join(s.outside, "dir", "victim2"), []byte("precious too"), 0o600)
	s.before = s.snapshot(t)
	return s
}

// snapshot describes everything under base except the layer dir.
func (s *sandbox) snapshot(t testing.TB) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, "ERR "+p+" "+err.Error())
			return nil
		}
		if p == s.layer {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		unix.Lstat(p, &st)
		line := fmt.Sprintf("%s mode=%o uid=%d nlink=%d size=%d mtime=%d", strings.TrimPrefix(p, s.base), st.Mode, st.Uid, st.Nlink, st.Size, st.Mtim.Nano())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		}
		if d.IsDir() && p != s.base {
			// directories' mtimes change when children are added or removed
			line = fmt.Sprintf("%s dir mode=%o uid=%d", strings.TrimPrefix(p, s.base), st.Mode, st.Uid)
			ents, _ := os.ReadDir(p)
			line += fmt.Sprintf(" children=%d", len(ents))
		}
		if p == s.base {
			ents, _ := os.ReadDir(p)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			line = "base children=" + strings.Join(names, ",")
		}
		lines = append(lines, line)
		return nil
	})
	return strings.Join(lines, "\n")
}

// assertUntouched fails t if anything outside the layer dir changed.
func (s *sandbox) assertUntouched(t testing.TB) {
	t.Helper()
	if after := s.snapshot(t); after != s.before {
		t.Fatalf("host outside the layer changed:\nbefore:\n%s\nafter:\n%s", s.before, after)
	}
}

// removable makes sure t.TempDir's cleanup can delete trees a layer made
// read-only (only an issue without root).
func removable(t testing.TB, dir string) {
	if os.Geteuid() == 0 {
		return
	}
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
		// Walk again: directories that were unreadable are now readable.
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
}

func applyBytes(t testing.TB, dir string, b []byte, opts ApplyOptions) error {
	t.Helper()
	_, _, err := Apply(context.Background(), dir, bytes.NewReader(b), opts)
	return err
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// rawHeader builds one ustar header block by hand (for what tar.Writer
// refuses to write, like GNU sparse PAX records).
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", 0o644))
	copy(b[108:116], fmt.Sprintf("%07o\x00", 0))
	copy(b[116:124], fmt.Sprintf("%07o\x00", 0))
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", t0.Unix()))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// sparseTar is a tar with one PAX (GNU 0.1) sparse file claiming logical
// bytes, holding data at offset dataAt.
func sparseTar(name string, logical, dataAt int64, data []byte) []byte {
	rec := func(k, v string) string {
		s := " " + k + "=" + v + "\n"
		n := len(s)
		for len(fmt.Sprint(n))+len(s) != n {
			n = len(fmt.Sprint(n)) + len(s)
		}
		return fmt.Sprint(n) + s
	}
	pax := rec("GNU.sparse.size", fmt.Sprint(logical)) +
		rec("GNU.sparse.numblocks", "1") +
		rec("GNU.sparse.map", fmt.Sprintf("%d,%d", dataAt, len(data)))
	var out []byte
	out = append(out, rawHeader("PaxHeaders/"+name, 'x', int64(len(pax)))...)
	out = append(out, pad([]byte(pax))...)
	out = append(out, rawHeader(name, '0', int64(len(data)))...)
	out = append(out, pad(append([]byte(nil), data...))...)
	out = append(out, make([]byte, 1024)...)
	return out
}
