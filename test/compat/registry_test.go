package compat

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/internal/testutil"
)

// startRegistry runs Debian's docker-registry on a free loopback port with
// its storage in a temp dir, and returns host:port and the storage root.
func startRegistry(t *testing.T) (string, string) {
	t.Helper()
	testutil.RequireFile(t, "/usr/bin/docker-registry", "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", storage, addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", filepath.Join(dir, "config.yml"))
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s:\n%s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, storage
}

// TestDockerPushPull: the docker CLI pushes an image from berth to a real
// registry and pulls it back into berth, which runs it; a second push sends
// no layer again, and a tampered blob is refused without naming anything.
func TestDockerPushPull(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	reg, storage := startRegistry(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	ref := reg + "/team/bb:1"
	must(t, d, "tag", "busybox", ref)
	if out := must(t, d, "push", ref); !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push printed:\n%s", out)
	}
	if out := must(t, d, "push", ref); !strings.Contains(out, "Layer already exists") || strings.Contains(out, "Pushed") {
		t.Fatalf("second push sent layers again:\n%s", out)
	}
	must(t, d, "rmi", ref, "busybox")
	if out := must(t, d, "pull", ref); !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Fatalf("pull printed:\n%s", out)
	}
	if out := must(t, d, "run", "--rm", ref, "echo", "pulled-and-ran"); strings.TrimSpace(out) != "pulled-and-ran" {
		t.Fatalf("run printed %q", out)
	}
	// A pulled image pushed to another repository of the same registry
	// borrows its blobs (cross-repository mount): nothing is uploaded.
	other := reg + "/other/bb:1"
	must(t, d, "tag", ref, other)
	if out := must(t, d, "push", other); !strings.Contains(out, "Mounted from team/bb") || strings.Contains(out, "Pushed") {
		t.Fatalf("push to another repository uploaded instead of mounting:\n%s", out)
	}
	must(t, d, "rmi", other)
	if out, err := docker(t, d, "pull", reg+"/team/none:1"); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("pull of a missing repository: %v\n%s", err, out)
	}

	// Incremental: an image with one more layer shares the base layer,
	// which is neither pushed nor pulled again.
	must(t, d, "run", "--name", "grow", ref, "sh", "-c", "echo more > /more")
	ref2 := reg + "/team/bb:2"
	must(t, d, "commit", "grow", ref2)
	must(t, d, "rm", "grow")
	if out := must(t, d, "push", ref2); strings.Count(out, "Pushed") != 2 || !strings.Contains(out, "Layer already exists") {
		t.Fatalf("push of the grown image (want the new layer and config pushed, the base not):\n%s", out)
	}
	must(t, d, "rmi", ref2)
	if out := must(t, d, "pull", ref2); !strings.Contains(out, "Already exists") || strings.Count(out, "Pull complete") != 2 {
		t.Fatalf("pull of the grown image fetched the shared layer again:\n%s", out)
	}

	// berth's own CLI: rmi, pull, images, push.
	berthCLI := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(testutil.BerthBinary(t), append([]string{"-H", d.Host}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	berthCLI("rmi", ref2)
	if out := berthCLI("pull", ref2); !strings.Contains(out, "Pull complete") {
		t.Fatalf("berth pull printed:\n%s", out)
	}
	if out := berthCLI("images"); !strings.Contains(out, reg+"/team/bb") {
		t.Fatalf("berth images:\n%s", out)
	}
	if out := berthCLI("push", ref2); !strings.Contains(out, "Layer already exists") {
		t.Fatalf("berth push printed:\n%s", out)
	}

	// Tamper with every layer blob in the registry's storage: the pull
	// must fail and leave the image unnamed.
	must(t, d, "rmi", ref, ref2)
	blobs, _ := filepath.Glob(filepath.Join(storage, "docker/registry/v2/blobs/sha256/*/*/data"))
	tampered := 0
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > 100<<10 { // layers, not configs or manifests
			os.WriteFile(b, append([]byte("tampered"), make([]byte, fi.Size()-8)...), 0o644)
			tampered++
		}
	}
	if tampered == 0 {
		t.Fatal("no layer blob found in the registry's storage")
	}
	if out, err := docker(t, d, "pull", ref); err == nil || !strings.Contains(out, "digest mismatch") {
		t.Fatalf("pulled a tampered image (%v):\n%s", err, out)
	}
	if out := must(t, d, "images", "-q", ref); strings.TrimSpace(out) != "" {
		t.Fatalf("a tampered pull left an image: %q", out)
	}
}

// slowProxy fronts a registry and sends blob bodies slowly (64 KiB every
// 20 ms); started is closed once a layer is in flight; ranges returns the
// Range headers of the blob requests so far.
func slowProxy(t *testing.T, registry string) (host string, started <-chan struct{}, ranges func() []string) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var seen []string
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			rp.ServeHTTP(w, r)
			return
		}
		if h := r.Header.Get("Range"); h != "" {
			mu.Lock()
			seen = append(seen, h)
			mu.Unlock()
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		if len(body) > 100<<10 {
			once.Do(func() { close(ch) })
		}
		for len(body) > 0 {
			n := min(64<<10, len(body))
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			body = body[n:]
			time.Sleep(20 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestKillDaemonMidPull: kill -9 the daemon while a layer is being pulled;
// after a restart nothing is named, no mount is left, and pulling again
// resumes the half-fetched layer with a Range request, completes and runs.
func TestKillDaemonMidPull(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	reg, _ := startRegistry(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	host, started, ranges := slowProxy(t, reg)
	ref := host + "/slow/bb:1"
	must(t, d, "tag", "busybox", ref)
	must(t, d, "push", ref)
	must(t, d, "rmi", ref, "busybox")

	pull := exec.Command("docker", "pull", ref)
	pull.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the pull never reached a layer")
	}
	time.Sleep(100 * time.Millisecond)
	d.Kill()
	pull.Wait()
	d = testutil.RestartDaemon(t, d)
	if out := must(t, d, "images", "-q", ref); strings.TrimSpace(out) != "" {
		t.Fatalf("a pull killed midway left an image: %q", out)
	}
	if out := must(t, d, "pull", ref); !strings.Contains(out, "Downloaded newer image") {
		t.Fatalf("retried pull:\n%s", out)
	}
	resumed := false
	for _, h := range ranges() {
		resumed = resumed || strings.HasPrefix(h, "bytes=") && !strings.HasPrefix(h, "bytes=0-")
	}
	if !resumed {
		t.Fatalf("the retried pull did not resume the half-fetched layer (Range headers %q)", ranges())
	}
	if out := must(t, d, "run", "--rm", ref, "echo", "whole"); strings.TrimSpace(out) != "whole" {
		t.Fatalf("run after the retried pull: %q", out)
	}
}

// TestDockerdPushPull: images travel between Docker's engine and berth
// through a real registry, both ways, keeping their IDs; and a manifest
// tampered with in the registry's storage is refused by berth, by tag and
// by digest, with nothing stored.
func TestDockerdPushPull(t *testing.T) {
	requireDockerCLI(t)
	reg, storage := startRegistry(t)
	dd := startDockerd(t)
	d := testutil.StartDaemon(t)
	id := func(d *testutil.Daemon, ref string) string {
		t.Helper()
		return strings.TrimSpace(must(t, d, "image", "inspect", "-f", "{{.Id}}", ref))
	}

	// dockerd pushes, berth pulls and runs.
	must(t, dd, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	fromDocker := reg + "/dockerd/bb:1"
	must(t, dd, "tag", "busybox", fromDocker)
	must(t, dd, "push", fromDocker)
	must(t, d, "pull", fromDocker)
	if got, want := id(d, fromDocker), id(dd, fromDocker); got != want {
		t.Fatalf("berth pulled %s as %s, dockerd has it as %s", fromDocker, got, want)
	}
	if out := must(t, d, "run", "--rm", fromDocker, "echo", "pushed-by-dockerd"); strings.TrimSpace(out) != "pushed-by-dockerd" {
		t.Fatalf("run printed %q", out)
	}

	// berth commits a layer on top and pushes; dockerd pulls only that
	// layer (the base is already in its store) and runs the image.
	must(t, d, "run", "--name", "grow", fromDocker, "sh", "-c", "echo made-by-berth > /more")
	fromBerth := reg + "/berth/bb:1"
	must(t, d, "commit", "grow", fromBerth)
	must(t, d, "rm", "grow")
	must(t, d, "push", fromBerth)
	if out := must(t, dd, "pull", fromBerth); !strings.Contains(out, "Already exists") || strings.Count(out, "Pull complete") != 1 {
		t.Fatalf("dockerd's pull of berth's image (want the base layer reused, one layer fetched):\n%s", out)
	}
	if got, want := id(dd, fromBerth), id(d, fromBerth); got != want {
		t.Fatalf("dockerd pulled %s as %s, berth has it as %s", fromBerth, got, want)
	}
	if out := must(t, dd, "run", "--rm", "--network", "none", fromBerth, "cat", "/more"); strings.TrimSpace(out) != "made-by-berth" {
		t.Fatalf("dockerd ran berth's image: %q", out)
	}

	// Tamper with the manifest of berth/bb:1 in the registry's storage,
	// keeping it valid JSON of the same size.
	link, err := os.ReadFile(filepath.Join(storage, "docker/registry/v2/repositories/berth/bb/_manifests/tags/1/current/link"))
	if err != nil {
		t.Fatal(err)
	}
	mdigest := strings.TrimSpace(string(link))
	hex := strings.TrimPrefix(mdigest, "sha256:")
	blob := filepath.Join(storage, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
	body, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(body), `"size":`)
	if i < 0 {
		t.Fatalf("manifest without a size field:\n%s", body)
	}
	j := i + len(`"size":`)
	for body[j] == ' ' {
		j++
	}
	if body[j] == '1' {
		body[j] = '2'
	} else {
		body[j] = '1'
	}
	if err := os.WriteFile(blob, body, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, d, "rmi", fromBerth)
	for _, ref := range []string{fromBerth, reg + "/berth/bb@" + mdigest} {
		if out, err := docker(t, d, "pull", ref); err == nil || !strings.Contains(out, "digest") {
			t.Fatalf("pulled %s with a tampered manifest (%v):\n%s", ref, err, out)
		}
	}
	if out := must(t, d, "images", "-q", reg+"/berth/bb"); strings.TrimSpace(out) != "" {
		t.Fatalf("a pull of a tampered manifest left an image: %q", out)
	}
}
