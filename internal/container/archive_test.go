package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/testutil"
)

// A fake container root with the symlinks CVE-2018-15664-class attacks
// plant: absolute and relative links that point out of the root.
func hostileRoot(t *testing.T) (root string, secret string) {
	t.Helper()
	base := t.TempDir()
	secret = filepath.Join(base, "host-secret")
	if err := os.WriteFile(secret, []byte("HOST SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(base, "rootfs")
	for _, d := range []string{"etc", "tmp", "data/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "data/sub/file"), []byte("in container"), 0o644)
	os.WriteFile(filepath.Join(root, "host-secret"), []byte("container's own"), 0o644)
	for link, target := range map[string]string{
		"abs-escape":      "/",           // absolute: the host's / if followed naively
		"rel-escape":      "../../../..", // climbs above the root
		"to-secret":       secret,        // absolute path of a host file
		"tmp/dir-escape":  "../..",       // relative, from a subdirectory
		"data/sub/parent": "../../..",    // escapes through ..
		"etc-link":        "/etc",        // a fine link inside the root
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root, secret
}

func openDir(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func tarOf(t *testing.T, root int, p string) map[string]string {
	t.Helper()
	clean, trailing := cleanContainerPath(p)
	fd, err := resolvePath(root, clean, trailing)
	if err != nil {
		t.Fatalf("resolve %s: %v", p, err)
	}
	defer unix.Close(fd)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := &treeWriter{ctx: context.Background(), tw: tw, links: map[[2]uint64]string{}}
	if err := tr.add(fd, "x"); err != nil {
		t.Fatalf("archive %s: %v", p, err)
	}
	tw.Close()
	out := map[string]string{}
	rd := tar.NewReader(&buf)
	for {
		h, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rd)
		out[h.Name] = string(b) + h.Linkname
	}
}

// Paths through hostile symlinks resolve inside the root; the archive
// never holds a host file.
func TestArchiveSymlinkEscapes(t *testing.T) {
	rootPath, _ := hostileRoot(t)
	root := openDir(t, rootPath)
	tests := []struct {
		path string
		want string // content of the entry "x" (a file) or a key expected
	}{
		{"/abs-escape/host-secret", "container's own"},
		{"/rel-escape/host-secret", "container's own"},
		{"/to-secret/", ""}, // a link to a missing in-root path: fails below
		{"/tmp/dir-escape/host-secret", "container's own"},
		{"/data/sub/parent/host-secret", "container's own"},
		{"/../../../host-secret", "container's own"},
		{"/etc-link/passwd", "root:x:0:0::/root:/bin/sh\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			clean, trailing := cleanContainerPath(tt.path)
			fd, err := resolvePath(root, clean, trailing)
			if tt.want == "" {
				if err == nil {
					unix.Close(fd)
					t.Fatalf("resolve %s: want an error (the link's target is not in the root)", tt.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve %s: %v", tt.path, err)
			}
			unix.Close(fd)
			got := tarOf(t, root, tt.path)
			if got["x"] != tt.want {
				t.Fatalf("archive of %s: x = %q, want %q", tt.path, got["x"], tt.want)
			}
		})
	}
}

// A directory archive stores symlinks as symlinks and never descends
// into them.
func TestArchiveDirectoryKeepsLinks(t *testing.T) {
	rootPath, _ := hostileRoot(t)
	root := openDir(t, rootPath)
	got := tarOf(t, root, "/")
	for name, v := range got {
		if strings.Contains(v, "HOST SECRET") {
			t.Fatalf("entry %s holds the host's file", name)
		}
	}
	if got["x/abs-escape"] != "/" || got["x/tmp/dir-escape"] != "../.." {
		t.Fatalf("links not archived as links: %v", got)
	}
	if _, ok := got["x/abs-escape/host-secret"]; ok {
		t.Fatal("the archive followed a symlink")
	}
}

// A symlink's stat says where it leads inside the container.
func TestResolvedName(t *testing.T) {
	rootPath, _ := hostileRoot(t)
	root := openDir(t, rootPath)
	for p, want := range map[string]string{
		"/abs-escape":      "/",
		"/rel-escape":      "/",
		"/etc-link":        "/etc",
		"/data/sub/parent": "/",
		"/tmp/dir-escape":  "/",
		"/etc-link/passwd": "/etc/passwd",
	} {
		got, err := resolvedName(root, p)
		if err != nil || got != want {
			t.Errorf("resolvedName(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
}

func tarBytes(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		var body []byte
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
			body = []byte(h.Name)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

// extract runs what PUT archive does on dir.
func extract(t *testing.T, dir string, data []byte, opts ExtractOptions) error {
	t.Helper()
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- filterExtract(dfd, bytes.NewReader(data), pw, opts) }()
	_, _, err = layer.Apply(context.Background(), "/proc/self/fd/"+strconv.Itoa(dfd), pr, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts, NoChown: true})
	pr.CloseWithError(errors.New("done"))
	if ferr := <-done; ferr != nil {
		return ferr
	}
	return err
}

// Entries written through symlinks planted in the container (or in the
// tar itself) stay inside the extraction directory.
func TestExtractSymlinkEscapes(t *testing.T) {
	rootPath, secret := hostileRoot(t)
	data := tarBytes(t,
		&tar.Header{Name: "abs-escape/host-secret", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "rel-escape/pwned", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777},
		&tar.Header{Name: "evil/pwned2", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "../../pwned3", Typeflag: tar.TypeReg, Mode: 0o644},
	)
	if err := extract(t, rootPath, data, ExtractOptions{}); err != nil {
		t.Logf("extract: %v (refusing is fine too)", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "HOST SECRET" {
		t.Fatalf("host file overwritten: %q", b)
	}
	base := filepath.Dir(rootPath)
	for _, p := range []string{"pwned", "pwned2", "pwned3", "../pwned", "/pwned", "/pwned2"} {
		if _, err := os.Lstat(filepath.Join(base, p)); err == nil {
			t.Fatalf("%s was written outside the root", p)
		}
	}
}

func TestExtractNoOverwriteDirNonDir(t *testing.T) {
	rootPath, _ := hostileRoot(t)
	err := extract(t, rootPath, tarBytes(t, &tar.Header{Name: "etc", Typeflag: tar.TypeReg, Mode: 0o644}), ExtractOptions{NoOverwriteDirNonDir: true})
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Fatalf("file over directory: err = %v", err)
	}
	err = extract(t, rootPath, tarBytes(t, &tar.Header{Name: "host-secret/", Typeflag: tar.TypeDir, Mode: 0o755}), ExtractOptions{NoOverwriteDirNonDir: true})
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite non-directory") {
		t.Fatalf("directory over file: err = %v", err)
	}
	if err := extract(t, rootPath, tarBytes(t, &tar.Header{Name: "new/", Typeflag: tar.TypeDir, Mode: 0o755}, &tar.Header{Name: "new/f", Typeflag: tar.TypeReg, Mode: 0o600}), ExtractOptions{NoOverwriteDirNonDir: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rootPath, "new/f")); err != nil || string(b) != "new/f" {
		t.Fatalf("new/f = %q, %v", b, err)
	}
}

// The container swaps a directory for a symlink to / while it is
// archived, again and again: no archive ever holds the host's file.
func TestArchiveSymlinkRace(t *testing.T) {
	rootPath, secret := hostileRoot(t)
	// The host file is reachable as <host>/host-secret; inside the root,
	// /race/host-secret is the container's own until "race" is swapped.
	os.WriteFile(filepath.Join(rootPath, "host-secret"), []byte("container's own"), 0o644)
	race := filepath.Join(rootPath, "race")
	os.MkdirAll(race, 0o755)
	os.WriteFile(filepath.Join(race, "host-secret"), []byte("in race dir"), 0o644)
	hostDir := filepath.Dir(secret)
	root := openDir(t, rootPath)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			os.Rename(race, race+".d")
			os.Symlink(hostDir, race)
			os.Remove(race)
			os.Rename(race+".d", race)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	for range 300 {
		for _, p := range []string{"/race/host-secret", "/race"} {
			clean, _ := cleanContainerPath(p)
			fd, err := resolvePath(root, clean, false)
			if err != nil {
				continue
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			(&treeWriter{ctx: context.Background(), tw: tw, links: map[[2]uint64]string{}}).add(fd, "x")
			tw.Close()
			unix.Close(fd)
			if bytes.Contains(buf.Bytes(), []byte("HOST SECRET")) {
				t.Fatalf("the archive of %s read the host's file", p)
			}
		}
	}
}

// A stopped container's mount destinations are resolved inside its root:
// a destination the container made a symlink to "/" (or to a host path)
// gets the bind inside the root, never on the host's directory.
func TestBindMountsSymlinkDestination(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	src := filepath.Join(base, "src")
	hostTarget := filepath.Join(base, "host-target")
	for _, d := range []string{root, src, hostTarget} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(src, "from-volume"), []byte("v"), 0o644)
	os.Symlink("/", filepath.Join(root, "to-root"))
	os.Symlink(hostTarget, filepath.Join(root, "to-host"))
	os.MkdirAll(filepath.Join(root, "real"), 0o755)
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	t.Cleanup(func() {
		for range 4 {
			unix.Unmount(root, unix.MNT_DETACH)
			unix.Unmount(filepath.Join(root, "real"), unix.MNT_DETACH)
		}
	})
	err = bindMounts(fd, []Mount{
		{MountPoint: container.MountPoint{Source: src, Destination: "/to-host", RW: true}},
		{MountPoint: container.MountPoint{Source: src, Destination: "/missing/dir", RW: true}},
		{MountPoint: container.MountPoint{Source: src, Destination: "/real", RW: false}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(hostTarget, "from-volume")); err == nil {
		t.Fatal("the bind landed on the host path the symlink names")
	}
	if _, err := os.Stat(filepath.Join(root, "missing")); err == nil {
		t.Fatal("a missing destination was created")
	}
	if _, err := os.Stat(filepath.Join(root, "real", "from-volume")); err != nil {
		t.Fatalf("bind at /real: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "real", "w"), nil, 0o644); err == nil {
		t.Fatal("a read-only bind is writable")
	}
}
