package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(os.Symlink("/etc", filepath.Join(root, "abs")))
	must(os.Symlink("../../..", filepath.Join(root, "a/b/up")))
	must(os.Symlink("b", filepath.Join(root, "a/rel")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	for _, tc := range []struct{ in, want string }{
		{"a/b", "/a/b"},
		{"/a/b/", "/a/b"},
		{"../../etc/passwd", "/etc/passwd"},
		{"abs/passwd", "/etc/passwd"},
		{"a/b/up/etc", "/etc"},
		{"a/b/up/a/b/up/x", "/x"},
		{"a/rel/x", "/a/b/x"},
		{"a/b/../../..", "/"},
		{"missing/../a", "/a"},
	} {
		got, err := resolveIn(root, tc.in)
		if err != nil {
			t.Errorf("resolveIn(%q): %v", tc.in, err)
			continue
		}
		if want := filepath.Join(root, tc.want); got != want {
			t.Errorf("resolveIn(%q) = %q, want %q", tc.in, got, want)
		}
	}
	if _, err := resolveIn(root, "loop/x"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("symlink loop: %v", err)
	}
}

// FuzzResolveIn: whatever the path and the symlinks, the result stays in root.
func FuzzResolveIn(f *testing.F) {
	for _, s := range []string{"a/../..", "/x/y", "l/../../z", "..", "l/l/l"} {
		f.Add(s, "../..")
	}
	f.Fuzz(func(t *testing.T, p, link string) {
		if strings.ContainsRune(link, 0) || len(link) > 200 || len(p) > 400 {
			return
		}
		root := t.TempDir()
		if err := os.Symlink(link, filepath.Join(root, "l")); err != nil {
			return
		}
		got, err := resolveIn(root, p)
		if err != nil {
			return
		}
		if got != root && !strings.HasPrefix(got, root+string(filepath.Separator)) {
			t.Fatalf("resolveIn(%q) with l -> %q = %q: outside %q", p, link, got, root)
		}
	})
}

func TestExpandPorts(t *testing.T) {
	for in, want := range map[string][]string{
		"80":          {"80/tcp"},
		"53/UDP":      {"53/udp"},
		"8000-8002":   {"8000/tcp", "8001/tcp", "8002/tcp"},
		"1/sctp":      {"1/sctp"},
		"70000":       {""},
		"80/icmp":     {""},
		"9-8":         {""},
		"x":           {""},
		"08":          {""},
		"65535/tcp":   {"65535/tcp"},
		"100-100/udp": {"100/udp"},
	} {
		if diff := cmp.Diff(want, expandPorts(in)); diff != "" {
			t.Errorf("expandPorts(%q): %s", in, diff)
		}
	}
}

func TestApplyDockerignore(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "a.log", "keep/x.log", "keep/ok.txt", "drop/y", ".dockerignore"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := ""
		if f == ".dockerignore" {
			data = "# comment\n*.log\ndrop\nDockerfile\n.dockerignore\n!keep/x.log\n"
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := applyDockerignore(dir, "Dockerfile"); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	want := []string{".dockerignore", "Dockerfile", "keep/ok.txt", "keep/x.log"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after .dockerignore (-want +got):\n%s", diff)
	}
}

// FuzzDockerignore: any .dockerignore either fails cleanly or leaves the
// Dockerfile in place.
func FuzzDockerignore(f *testing.F) {
	f.Add("*\n!x\n")
	f.Add("**/a\n[\n")
	f.Add("../..\n/etc\n")
	f.Fuzz(func(t *testing.T, ignore string) {
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM x"), 0o644)
		_ = os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "sub", "x"), nil, 0o644)
		_ = os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644)
		if err := applyDockerignore(dir, "Dockerfile"); err != nil {
			return
		}
		if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
			t.Fatalf("the Dockerfile went: %v", err)
		}
	})
}

type tarEntry struct {
	name, link, body string
	typ              byte
}

func makeTar(t *testing.T, entries []tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestExtractContext(t *testing.T) {
	big := strings.Repeat("x", 3<<20) // hashed on the side while written
	dir := filepath.Join(t.TempDir(), "ctx")
	sums, err := extractContext(context.Background(), makeTar(t, []tarEntry{
		{name: "Dockerfile", body: "FROM scratch\n", typ: tar.TypeReg},
		{name: "d/", typ: tar.TypeDir},
		{name: "d/big", body: big, typ: tar.TypeReg},
		{name: "d/hard", link: "d/big", typ: tar.TypeLink},
		{name: "l", link: "/etc", typ: tar.TypeSymlink},
	}), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sums["d/big"], sha256.Sum256([]byte(big)); got != want {
		t.Errorf("sum of d/big = %x, want %x", got, want)
	}
	if sums["d/hard"] != sums["d/big"] {
		t.Error("hard link has no sum")
	}
	if data, err := os.ReadFile(filepath.Join(dir, "d/big")); err != nil || string(data) != big {
		t.Errorf("d/big: %v", err)
	}
}

// TestExtractContextEscapes: no entry of a context can write outside it.
func TestExtractContextEscapes(t *testing.T) {
	for name, entries := range map[string][]tarEntry{
		"through a symlink":          {{name: "l", link: "/", typ: tar.TypeSymlink}, {name: "l/escaped", body: "x", typ: tar.TypeReg}},
		"through a relative symlink": {{name: "l", link: "../..", typ: tar.TypeSymlink}, {name: "l/escaped", body: "x", typ: tar.TypeReg}},
		"hard link out":              {{name: "h", link: "../../../etc/hostname", typ: tar.TypeLink}},
		"dotdot is clamped":          {{name: "../../escaped", body: "x", typ: tar.TypeReg}},
	} {
		t.Run(name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "a", "ctx")
			_, _ = extractContext(context.Background(), makeTar(t, entries), dir)
			var outside []string
			_ = filepath.Walk(top, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !strings.HasPrefix(p, dir) && fi.Name() == "escaped" {
					outside = append(outside, p)
				}
				return nil
			})
			if len(outside) > 0 {
				t.Fatalf("wrote outside the context: %v", outside)
			}
			if _, err := os.Stat("/escaped"); err == nil {
				t.Fatal("wrote /escaped")
			}
		})
	}
}
