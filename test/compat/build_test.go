package compat

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
