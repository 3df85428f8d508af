package content

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

const crashChildEnv = "BERTH_CONTENT_CRASH_CHILD"

var crashData = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB

// TestMain lets the test binary act as a writer that gets killed.
func TestMain(m *testing.M) {
	if root := os.Getenv(crashChildEnv); root != "" {
		crashChild(root)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes half the blob, says so, and waits to be killed.
func crashChild(root string) {
	s, err := Open(root)
	if err != nil {
		panic(err)
	}
	dgst := digest.FromBytes(crashData)
	w, err := s.Writer(context.Background(), "crash", dgst, int64(len(crashData)))
	if err != nil {
		panic(err)
	}
	if _, err := w.Write(crashData[:len(crashData)/2]); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("ready\n")
	select {} // wait for SIGKILL
}

// kill -9 in mid-write leaves no blob, only an ingest, which a new Writer
// resumes (the dead writer's lock is gone with it).
func TestKillMidWrite(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "content")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	dgst := digest.FromBytes(crashData)
	if _, err := s.Info(ctx, dgst); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("blob visible after kill: %v", err)
	}
	if f := blobFiles(t, s); len(f) != 0 {
		t.Fatalf("files under blobs/: %v", f)
	}
	ings, _ := s.Ingests(ctx)
	if len(ings) != 1 || ings[0].Offset != int64(len(crashData)/2) {
		t.Fatalf("ingests: %+v", ings)
	}
	w, err := s.Writer(ctx, "crash", dgst, int64(len(crashData)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(crashData[w.Offset():]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ReadBlob(ctx, dgst); !bytes.Equal(got, crashData) {
		t.Fatal("resumed blob differs")
	}
}
