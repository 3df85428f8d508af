package testutil

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDataRootUnmountsEverything(t *testing.T) {
	RequireRoot(t)
	var root string
	t.Run("inner", func(t *testing.T) {
		root = DataRoot(t)
		for _, d := range []string{"a", "a/b"} {
			p := filepath.Join(root, d)
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
		}
	})
	if ms, err := MountsUnder(filepath.Dir(root)); err == nil && len(ms) != 0 {
		t.Fatalf("mounts left after the test: %v", ms)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("data root not removed: %v", err)
	}
}

func TestBusyboxRootfs(t *testing.T) {
	dir := BusyboxRootfs(t)
	for _, p := range []string{"bin/sh", "bin/busybox", "usr/bin/env", "etc/passwd"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	a, _ := os.Stat(filepath.Join(dir, "bin/sh"))
	b, _ := os.Stat(filepath.Join(dir, "bin/busybox"))
	if !os.SameFile(a, b) {
		t.Error("applets must be hard links to busybox, not copies")
	}
}

func TestBusyboxImageIsConsistent(t *testing.T) {
	path := BusyboxImage(t, "busybox:latest")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	for name, data := range files {
		if hexd, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && hexd != "" {
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != hexd {
				t.Errorf("blob %s does not match its digest", name)
			}
		}
	}
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil || len(dm) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	if dm[0].RepoTags[0] != "busybox:latest" || files[dm[0].Config] == nil || files[dm[0].Layers[0]] == nil {
		t.Fatalf("manifest.json points at missing files: %+v", dm[0])
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(files[dm[0].Config], &cfg)
	if want := "sha256:" + strings.TrimPrefix(dm[0].Layers[0], "blobs/sha256/"); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != want {
		t.Fatalf("diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, want)
	}
	if files["index.json"] == nil || files["oci-layout"] == nil {
		t.Fatal("not an OCI image layout")
	}
	// The layer keeps the applets as hard links, so it stays about one busybox big.
	if n := len(files[dm[0].Layers[0]]); n > 3<<20 {
		t.Errorf("layer is %d bytes: applets were copied, not linked", n)
	}
}
