package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// BusyboxBinary is where Debian's busybox-static installs its static binary.
const BusyboxBinary = "/bin/busybox"

// BusyboxRootfs makes a busybox root filesystem in a fresh directory: the
// static busybox binary with every applet hard-linked to it, /etc/passwd and
// /etc/group with root and nobody, and the empty directories a container
// mounts over. No network is needed.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	RequireFile(t, BusyboxBinary, "busybox-static")
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := MakeBusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// MakeBusyboxRootfs writes the rootfs BusyboxRootfs describes into dir.
func MakeBusyboxRootfs(dir string) error {
	out, err := exec.Command(BusyboxBinary, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777|fs.ModeSticky); err != nil {
		return err
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := copyFile(BusyboxBinary, bb, 0o755); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		dst := filepath.Join(dir, applet)
		if dst == bb {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Link(bb, dst); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BusyboxImage writes a one-layer busybox image, tagged ref (e.g.
// "busybox:latest"), as an image archive and returns its path. The archive
// is both a docker-archive (manifest.json, as `docker load` reads it) and an
// OCI image layout (oci-layout, index.json, blobs/sha256/...).
func BusyboxImage(t testing.TB, ref string) string {
	t.Helper()
	rootfs := BusyboxRootfs(t)
	path := filepath.Join(t.TempDir(), "busybox.tar")
	if err := WriteImageArchive(path, rootfs, ref, []string{"sh"}); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteImageArchive writes rootfs as a one-layer image archive at path,
// tagged ref, whose default command is cmd. Timestamps are fixed, so the
// same rootfs always gives the same digests.
func WriteImageArchive(path, rootfs, ref string, cmd []string) error {
	var layer bytes.Buffer
	if err := TarDir(&layer, rootfs); err != nil {
		return err
	}
	layerDigest := digestOf(layer.Bytes())
	created := time.Unix(0, 0).UTC()
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      created,
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": cmd,
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerDigest}},
		"history": []map[string]any{{"created": created, "created_by": "berth testutil: busybox-static"}},
	})
	if err != nil {
		return err
	}
	configDigest := digestOf(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + configDigest, "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layerDigest, "size": layer.Len()}},
	})
	if err != nil {
		return err
	}
	manifestDigest := digestOf(manifest)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType":   "application/vnd.oci.image.manifest.v1+json",
			"digest":      "sha256:" + manifestDigest,
			"size":        len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tagOf(ref)},
		}},
	})
	if err != nil {
		return err
	}
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   "blobs/sha256/" + configDigest,
		"RepoTags": []string{ref},
		"Layers":   []string{"blobs/sha256/" + layerDigest},
	}})
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	entries := []struct {
		name string
		data []byte
	}{
		{"blobs/sha256/" + layerDigest, layer.Bytes()},
		{"blobs/sha256/" + configDigest, config},
		{"blobs/sha256/" + manifestDigest, manifest},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"manifest.json", dockerManifest},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: created}); err != nil {
			f.Close()
			return err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data)), ModTime: created}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TarDir writes the tree at dir as an uncompressed layer tar: sorted
// entries, hard links as tar links, owner root, fixed times.
func TarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime = time.Unix(0, 0)
		hdr.Format = tar.FormatPAX
		if st, ok := sysStat(fi); ok && fi.Mode().IsRegular() && st.nlink > 1 {
			key := inode{st.dev, st.ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[key] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
