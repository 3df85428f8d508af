package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/testutil"
)

// storeEntries counts the daemon's blobs, ingests and snapshots on disk.
func storeEntries(t *testing.T, d *testutil.Daemon) int {
	t.Helper()
	n := 0
	for _, g := range []string{"content/blobs/*/*", "content/ingest/*", "snapshots/*/snapshots/*"} {
		m, err := filepath.Glob(filepath.Join(d.DataRoot, g))
		if err != nil {
			t.Fatal(err)
		}
		n += len(m)
	}
	return n
}

// TestDockerImport: docker export a container, docker import the tarball
// back (from a file and from stdin) with --change and --message, run the
// result; bad changes and a file that is not a tarball are refused with a
// clear message, name nothing and leave no blob or snapshot behind.
func TestDockerImport(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "--name", "src", "busybox", "sh", "-c", "echo exported > /marker")
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	must(t, d, "export", "-o", tarball, "src")
	must(t, d, "rm", "src")

	out := must(t, d, "import", "-c", `CMD ["cat", "/marker"]`, "-c", "ENV GREETING=hi", "-c", "WORKDIR /tmp", "-m", "from a test", tarball, "imported:1")
	if !strings.HasPrefix(strings.TrimSpace(out), "sha256:") {
		t.Fatalf("docker import printed %q", out)
	}
	if out := must(t, d, "run", "--rm", "imported:1"); strings.TrimSpace(out) != "exported" {
		t.Fatalf("run of the imported image printed %q", out)
	}
	if out := must(t, d, "run", "--rm", "imported:1", "sh", "-c", "echo $GREETING $(pwd)"); strings.TrimSpace(out) != "hi /tmp" {
		t.Fatalf("env and workdir of the imported image: %q", out)
	}
	if out := must(t, d, "history", "--format", "{{.Comment}}", "imported:1"); !strings.Contains(out, "from a test") {
		t.Fatalf("history: %q", out)
	}
	if out := must(t, d, "image", "inspect", "--format", "{{len .RootFS.Layers}} {{.Os}}", "imported:1"); strings.TrimSpace(out) != "1 linux" {
		t.Fatalf("inspect: %q", out)
	}

	// From stdin, with no name: a dangling image.
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("docker", "import", "-")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
	cmd.Stdin = f
	if b, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Fatalf("docker import -: %v\n%s", err, b)
	}

	// berth's own CLI.
	b, err := exec.Command(testutil.BerthBinary(t), "-H", d.Host, "import", "-c", "CMD cat /marker", tarball, "imported:berth").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Fatalf("berth import: %v\n%s", err, b)
	}
	if out := must(t, d, "run", "--rm", "imported:berth"); strings.TrimSpace(out) != "exported" {
		t.Fatalf("run of the image berth imported printed %q", out)
	}

	// Failures: a clear message, nothing named, nothing left on disk.
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	os.WriteFile(garbage, []byte(strings.Repeat("this is not a tar archive ", 4096)), 0o644)
	// The --rm container's snapshot is deleted after its removal answered
	// (container.Service.reclaim): count once it is gone.
	before := storeEntries(t, d)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := storeEntries(t, d)
		if n == before {
			break
		}
		before = n
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "FROBNICATE now", tarball, "failed:1"}, "FROBNICATE is not a valid change command"},
		{[]string{"-c", "RUN echo no", tarball, "failed:1"}, "RUN is not a valid change command"},
		{[]string{"-c", "SHELL /bin/sh", tarball, "failed:1"}, "SHELL requires the arguments to be in JSON form"},
		{[]string{garbage, "failed:1"}, "not a tar archive"},
		{[]string{"--platform", "windows/amd64", tarball, "failed:1"}, "not supported"},
		{[]string{tarball, "Bad:Name"}, "invalid reference format"},
	} {
		out, err := docker(t, d, append([]string{"import"}, tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("docker import %s: %v, want an error saying %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
		if out := must(t, d, "images", "-q", "failed:1"); strings.TrimSpace(out) != "" {
			t.Errorf("docker import %s named an image", strings.Join(tc.args, " "))
		}
		if n := storeEntries(t, d); n != before {
			t.Errorf("docker import %s left %d blobs/ingests/snapshots more", strings.Join(tc.args, " "), n-before)
		}
	}
}
