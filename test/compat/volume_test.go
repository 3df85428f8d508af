package compat

import (
	"os"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

func TestDockerVolumeLifecycle(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := docker(t, d, args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}
	if got := run("volume", "create", "--label", "app=web", "webdata"); got != "webdata" {
		t.Fatalf("create printed %q", got)
	}
	anon := run("volume", "create")
	if len(anon) != 64 {
		t.Fatalf("anonymous volume name %q", anon)
	}
	if got := run("volume", "ls", "-q", "--filter", "label=app=web"); got != "webdata" {
		t.Fatalf("ls -q filtered = %q", got)
	}
	if got := run("volume", "inspect", "--format", "{{.Driver}} {{.Scope}} {{.Mountpoint}}", "webdata"); got != "local local "+d.DataRoot+"/volumes/webdata/_data" {
		t.Fatalf("inspect = %q", got)
	}
	if got := run("volume", "prune", "-f"); !strings.Contains(got, anon) {
		t.Fatalf("prune removed %q, want the anonymous volume", got)
	}
	run("volume", "rm", "webdata")
	if got := run("volume", "ls", "-q"); got != "" {
		t.Fatalf("volumes left: %q", got)
	}
	out, err := docker(t, d, "volume", "inspect", "webdata")
	if err == nil || !strings.Contains(out, "no such volume") {
		t.Fatalf("inspect of a removed volume: %v %s", err, out)
	}
	out, err = docker(t, d, "volume", "create", "bad/name")
	if err == nil || !strings.Contains(out, "invalid characters") {
		t.Fatalf("bad name: %v %s", err, out)
	}
}

// TestDockerVolumeCopiesImageFiles: a volume that is empty at a
// container's first start gets the image's files at its mount point, with
// the directory's owner and mode, as Docker does; nocopy (both syntaxes)
// leaves it empty, a volume with files keeps them, and an image path that
// is a symlink pointing out of the rootfs still copies from inside it.
func TestDockerVolumeCopiesImageFiles(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "--name", "maker", "busybox", "sh", "-c",
		"mkdir -p /data/sub && echo hi >/data/sub/f && ln -s sub/f /data/link && chown -R 1234:5678 /data && chmod 0750 /data && "+
			"echo inside-the-image >/etc/marker && ln -s /etc /escape")
	must(t, d, "commit", "maker", "withdata")
	must(t, d, "rm", "maker")

	got := must(t, d, "run", "--rm", "-v", "filled:/data", "withdata", "sh", "-c", "stat -c '%u:%g %a' /data; cat /data/sub/f; readlink /data/link")
	if want := "1234:5678 750\nhi\nsub/f"; strings.TrimSpace(got) != want {
		t.Fatalf("named volume at /data: %q, want %q", got, want)
	}
	// Anonymous volumes copy too; an image VOLUME is one (--mount type=volume without a source here).
	if got := must(t, d, "run", "--rm", "--mount", "type=volume,target=/data", "withdata", "cat", "/data/sub/f"); strings.TrimSpace(got) != "hi" {
		t.Fatalf("anonymous volume: %q", got)
	}
	// The volume now holds files: a second image's files do not replace them.
	must(t, d, "run", "--rm", "-v", "filled:/data", "withdata", "sh", "-c", "echo changed >/data/sub/f")
	if got := must(t, d, "run", "--rm", "-v", "filled:/data", "withdata", "cat", "/data/sub/f"); strings.TrimSpace(got) != "changed" {
		t.Fatalf("a volume with files was filled again: %q", got)
	}
	for _, flag := range [][]string{{"-v", "empty1:/data:nocopy"}, {"--mount", "type=volume,source=empty2,target=/data,volume-nocopy"}} {
		args := append(append([]string{"run", "--rm"}, flag...), "withdata", "ls", "-A", "/data")
		if got := must(t, d, args...); strings.TrimSpace(got) != "" {
			t.Fatalf("%v: the volume got %q", flag, got)
		}
	}
	// /escape is an absolute symlink to /etc: it resolves inside the
	// container's rootfs, so the volume gets the image's /etc, never the
	// host's.
	must(t, d, "run", "--rm", "-v", "esc:/escape", "withdata", "true")
	dir := strings.TrimSpace(must(t, d, "volume", "inspect", "--format", "{{.Mountpoint}}", "esc"))
	if b, err := os.ReadFile(dir + "/marker"); err != nil || string(b) != "inside-the-image\n" {
		t.Fatalf("volume on a symlink: marker %q %v", b, err)
	}
	if _, err := os.Stat(dir + "/os-release"); err == nil {
		t.Fatal("the volume got the host's /etc")
	}
}

// TestDockerVolumesFrom: --volumes-from shares another container's volumes
// (named and anonymous) and binds, read-write or as ro; --rm of the
// container that borrowed them leaves them; a missing container is
// Docker's "No such container".
func TestDockerVolumesFrom(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	host := t.TempDir()
	if err := os.WriteFile(host+"/on-host", []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, d, "create", "--name", "store", "-v", "shared:/data", "-v", "/anon", "-v", host+":/hostbind", "busybox", "true")
	anon := strings.TrimSpace(must(t, d, "inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`, "store"))
	if len(anon) != 64 {
		t.Fatalf("store's anonymous volume: %q", anon)
	}
	got := must(t, d, "run", "--rm", "--volumes-from", "store", "busybox", "sh", "-c", "echo x >/data/f && echo y >/anon/g && cat /hostbind/on-host")
	if strings.TrimSpace(got) != "bound" {
		t.Fatalf("run --volumes-from store: %q", got)
	}
	if got := must(t, d, "run", "--rm", "-v", "shared:/data", "busybox", "cat", "/data/f"); strings.TrimSpace(got) != "x" {
		t.Fatalf("the shared volume holds %q", got)
	}
	if got := must(t, d, "volume", "ls", "-q"); !strings.Contains(got, anon) {
		t.Fatalf("--rm of the borrower removed store's anonymous volume: %q", got)
	}
	out, err := docker(t, d, "run", "--rm", "--volumes-from", "store:ro", "busybox", "touch", "/data/new")
	if err == nil || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("--volumes-from store:ro: %v %q", err, out)
	}
	must(t, d, "create", "--name", "ro-user", "--volumes-from", "store:ro", "-v", "own:/anon", "busybox", "true")
	mounts := strings.TrimSpace(must(t, d, "inspect", "--format", `{{range .Mounts}}{{.Destination}}={{.Name}}:{{.RW}} {{end}}`, "ro-user"))
	for _, want := range []string{"/data=shared:false", "/anon=own:true", "/hostbind=:false"} {
		if !strings.Contains(mounts, want) {
			t.Fatalf("ro-user's mounts %q lack %q", mounts, want)
		}
	}
	// The 404 makes the docker CLI try a pull first, as with Docker; --pull
	// never shows the daemon's answer.
	out, err = docker(t, d, "run", "--rm", "--pull", "never", "--volumes-from", "nope", "busybox", "true")
	if err == nil || !strings.Contains(out, "No such container: nope") {
		t.Fatalf("--volumes-from nope: %v %q", err, out)
	}
	out, err = docker(t, d, "run", "--rm", "--volumes-from", "store:rx", "busybox", "true")
	if err == nil || !strings.Contains(out, `mode "rx"`) {
		t.Fatalf("--volumes-from store:rx: %v %q", err, out)
	}
}
