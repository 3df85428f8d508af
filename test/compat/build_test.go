package compat

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth/berth/internal/testutil"
)

var updateGolden = flag.Bool("update", false, "rewrite the build golden files")

// dockerBuild runs `DOCKER_BUILDKIT=0 docker build` against d.
func dockerBuild(t *testing.T, d *testutil.Daemon, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"build"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildSummary is what the corpus compares: the image config fields issue 7
// names and, for the paths listed in the case's "paths" file, mode, owner
// and content.
type buildSummary struct {
	Config map[string]any    `json:"config"`
	Files  map[string]string `json:"files"`
}

func summarize(t *testing.T, d *testutil.Daemon, img string, paths []string) buildSummary {
	t.Helper()
	out, err := docker(t, d, "image", "inspect", "--format", "{{json .Config}}", img)
	if err != nil {
		t.Fatalf("inspect %s: %v\n%s", img, err, out)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("inspect %s: %v\n%s", img, err, out)
	}
	keep := map[string]any{}
	for _, k := range []string{"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "Healthcheck", "StopSignal", "Shell", "OnBuild"} {
		if v, ok := cfg[k]; ok && v != nil && v != "" {
			keep[k] = v
		}
	}
	files := map[string]string{}
	for _, p := range paths {
		out, err := docker(t, d, "run", "--rm", "--user", "0", "--entrypoint", "/bin/sh", img, "-c",
			`stat -c '%A %u:%g' "$1"; if [ -f "$1" ]; then cat "$1"; fi`, "sh", p)
		if err != nil {
			out = "missing"
		}
		files[p] = out
	}
	return buildSummary{Config: keep, Files: files}
}

// TestDockerBuildCorpus builds each testdata/build/<case> with the docker
// CLI's legacy builder against berth and compares the image with the
// case's golden.json (written from Docker's legacy builder's result, see
// docs/design/build.md; -update rewrites it from berth's).
func TestDockerBuildCorpus(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	cases, _ := filepath.Glob("testdata/build/*/Dockerfile")
	if len(cases) == 0 {
		t.Fatal("no build cases")
	}
	for _, df := range cases {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tag := "corpus-" + filepath.Base(dir)
			out, err := dockerBuild(t, d, "-t", tag, dir)
			if err != nil {
				t.Fatalf("docker build: %v\n%s", err, out)
			}
			if !strings.Contains(out, "Successfully tagged "+tag+":latest") {
				t.Fatalf("no success line:\n%s", out)
			}
			var paths []string
			if data, err := os.ReadFile(filepath.Join(dir, "paths")); err == nil {
				paths = strings.Fields(string(data))
			}
			got := summarize(t, d, tag, paths)
			golden := filepath.Join(dir, "golden.json")
			if *updateGolden {
				data, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(golden, append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			var want buildSummary
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			// Round-trip got through JSON so numbers compare alike.
			gd, _ := json.Marshal(got)
			got = buildSummary{}
			_ = json.Unmarshal(gd, &got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("image differs from golden (-want +got):\n%s\nbuild output:\n%s", diff, out)
			}
		})
	}
}

// startDockerd starts Debian's dockerd on its own roots and socket, with no
// networking set up, or skips when there is none.
func startDockerd(t *testing.T) *testutil.Daemon {
	t.Helper()
	testutil.RequireRoot(t)
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd is not installed (Debian docker.io): the golden files stand in for it")
	}
	dir, err := os.MkdirTemp("", "dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock,
		"--bridge", "none", "--iptables=false", "--ip6tables=false", "--storage-driver", "overlay2")
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logf.Close()
		_ = testutil.UnmountAll(dir)
		_ = os.RemoveAll(dir)
	})
	d := &testutil.Daemon{Host: "unix://" + sock, Socket: sock}
	for i := 0; ; i++ {
		if out, err := docker(t, d, "version"); err == nil {
			break
		} else if i > 300 {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd did not come up: %v\n%s\n%s", err, out, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// TestDockerBuildCorpusDockerd builds the corpus with Docker's own legacy
// builder (dockerd) and checks that the golden files — which berth's
// builds are held to — say what Docker does.
func TestDockerBuildCorpusDockerd(t *testing.T) {
	requireDockerCLI(t)
	d := startDockerd(t)
	out, err := docker(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	if err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	cases, _ := filepath.Glob("testdata/build/*/Dockerfile")
	for _, df := range cases {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "berth-only")); err == nil {
				t.Skip("berth-only case: Docker's legacy builder refuses it")
			}
			tag := "corpus-" + filepath.Base(dir)
			if out, err := dockerBuild(t, d, "-t", tag, dir); err != nil {
				t.Fatalf("docker build: %v\n%s", err, out)
			}
			var paths []string
			if data, err := os.ReadFile(filepath.Join(dir, "paths")); err == nil {
				paths = strings.Fields(string(data))
			}
			got := summarize(t, d, tag, paths)
			gd, _ := json.Marshal(got)
			got = buildSummary{}
			_ = json.Unmarshal(gd, &got)
			data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want buildSummary
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("golden differs from Docker's legacy builder (-golden +dockerd):\n%s", diff)
			}
		})
	}
}
