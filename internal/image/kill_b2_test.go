package image_test

// Written by helper B2.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/testutil"
)

const b2ChildEnv = "BERTH_B2_LOAD_CHILD" // "<data root>:<archive>"

// TestKilledLoadChild is the child of TestKillMidLoad: it loads an archive
// into a store and is killed while it unpacks.
func TestKilledLoadChild(t *testing.T) {
	spec := os.Getenv(b2ChildEnv)
	if spec == "" {
		t.Skip("child of TestKillMidLoad")
	}
	var root, archive string
	for i := len(spec) - 1; i >= 0; i-- {
		if spec[i] == ':' {
			root, archive = spec[:i], spec[i+1:]
			break
		}
	}
	s, _, _ := b2Store(t, root)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Load(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func b2ManyFiles(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("d%d/", i/1000), Mode: 0o755})
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("d%d/f%d", i/1000, i), Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestKillMidLoad kills (SIGKILL) a process in the middle of unpacking a
// loaded image's layer, then reopens the data root as a restarted daemon
// would: nothing is recorded or named, RemoveStale clears the leftovers,
// and loading again completes with every file in place.
func TestKillMidLoad(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("unpacks a 2000-file layer")
	}
	ctx := context.Background()
	root := testutil.DataRoot(t)
	const nfiles = 2000
	archive := filepath.Join(t.TempDir(), "big.tar")
	if err := os.WriteFile(archive, b2Layout(t, "docker.io/library/big:1", b2Tar(t, [][2]string{{"base", "b"}}), b2ManyFiles(t, nfiles)), 0o644); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledLoadChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), b2ChildEnv+"="+root+":"+archive)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the second layer's snapshot has files in it.
	killed := false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !killed {
		dirs, _ := filepath.Glob(filepath.Join(root, "snapshots", "snapshots", "*", "fs", "d1"))
		if len(dirs) > 0 {
			cmd.Process.Kill()
			killed = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the child never started unpacking the big layer (or finished before it could be killed)")
	}

	t.Logf("killed after %v", time.Since(t0))
	s, sn, cs := b2Store(t, root)
	if _, _, err := s.Resolve(ctx, "big:1"); err == nil {
		t.Fatal("an image half unpacked when killed is named")
	}
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Fatalf("%d images recorded after the kill (%v)", n, err)
	}
	if err := s.RemoveStale(ctx); err != nil {
		t.Fatal(err)
	}
	sn.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot %s (%s) left after RemoveStale", i.Name, i.Kind)
		}
		return nil
	})
	if err := cs.CleanIngests(ctx, 0); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Load(ctx, f); err != nil {
		t.Fatalf("load after the kill: %v", err)
	}
	img, _, err := s.Resolve(ctx, "big:1")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "rootfs")
	if err := s.PrepareRootfs(ctx, "c", img.ID.String(), target, image.RootfsOptions{}); err != nil {
		t.Fatal(err)
	}
	count := 0
	filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			count++
		}
		return nil
	})
	if err := s.UnmountRootfs(ctx, "c", target); err != nil {
		t.Fatal(err)
	}
	if count != nfiles+1 {
		t.Fatalf("rootfs has %d files, want %d", count, nfiles+1)
	}
	var blobs int
	cs.Walk(ctx, func(content.Info) error { blobs++; return nil })
	if blobs != 4 {
		t.Errorf("%d blobs, want 4 (2 layers, config, manifest)", blobs)
	}
}
