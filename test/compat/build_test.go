package compat

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth/berth/client"
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
// case's golden.json, which TestDockerBuildCorpusDockerd -update writes
// from Docker's legacy builder (berth-only cases: this test's -update).
func TestDockerBuildCorpus(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	buildCorpus(t, d, func(args ...string) (string, error) { return dockerBuild(t, d, args...) }, true)
}

// TestBerthBuildCorpus builds the corpus with berth's CLI, which hands a
// local daemon its context directory instead of a tarball
// (docs/decisions/0096): the images must equal the same golden files.
func TestBerthBuildCorpus(t *testing.T) {
	requireDockerCLI(t) // summarize inspects through the docker CLI
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	buildCorpus(t, d, func(args ...string) (string, error) {
		out, err := exec.Command(testutil.BerthBinary(t), append([]string{"-H", d.Host, "build"}, args...)...).CombinedOutput()
		return string(out), err
	}, false)
}

// buildCorpus builds each case of testdata/build with build and compares
// the image with the case's golden file (rewritten with -update, for the
// berth-only cases, when mayUpdate).
func buildCorpus(t *testing.T, d *testutil.Daemon, build func(args ...string) (string, error), mayUpdate bool) {
	cases, _ := filepath.Glob("testdata/build/*/Dockerfile")
	if len(cases) == 0 {
		t.Fatal("no build cases")
	}
	for _, df := range cases {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tag := "corpus-" + filepath.Base(dir)
			applyModes(t, dir)
			out, err := build(append(caseFlags(dir), "-t", tag, dir)...)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, out)
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
			if _, err := os.Stat(filepath.Join(dir, "berth-only")); err == nil && *updateGolden && mayUpdate {
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

// caseFlags are a corpus case's extra `docker build` flags (its "flags" file).
func caseFlags(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, "flags"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
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
			applyModes(t, dir)
			if out, err := dockerBuild(t, d, append(caseFlags(dir), "-t", tag, dir)...); err != nil {
				t.Fatalf("docker build: %v\n%s", err, out)
			}
			var paths []string
			if data, err := os.ReadFile(filepath.Join(dir, "paths")); err == nil {
				paths = strings.Fields(string(data))
			}
			got := summarize(t, d, tag, paths)
			if *updateGolden {
				data, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(filepath.Join(dir, "golden.json"), append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
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

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func imageID(t *testing.T, d *testutil.Daemon, ref string) string {
	t.Helper()
	out, err := docker(t, d, "image", "inspect", "--format", "{{.ID}}", ref)
	if err != nil {
		t.Fatalf("inspect %s: %v\n%s", ref, err, out)
	}
	return strings.TrimSpace(out)
}

// leftovers describes what builds left behind: containers, mounts under
// the data root, build directories; "" when there is nothing.
func leftovers(t *testing.T, d *testutil.Daemon) string {
	t.Helper()
	var out []string
	if ps, err := docker(t, d, "ps", "-aq"); err != nil || strings.TrimSpace(ps) != "" {
		out = append(out, fmt.Sprintf("containers: %q (%v)", ps, err))
	}
	if m, err := testutil.MountsUnder(d.DataRoot); err != nil || len(m) > 0 {
		out = append(out, fmt.Sprintf("mounts: %v (%v)", m, err))
	}
	ents, _ := os.ReadDir(filepath.Join(d.DataRoot, "tmp"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "build-") {
			out = append(out, "build dir "+e.Name())
		}
	}
	return strings.Join(out, "; ")
}

// requireClean checks that builds left nothing behind.
func requireClean(t *testing.T, d *testutil.Daemon) {
	t.Helper()
	if l := leftovers(t, d); l != "" {
		t.Fatalf("left behind: %s", l)
	}
}

func TestDockerBuildCache(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	df := "FROM busybox\nARG V=1\nENV A=b\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g.txt\nCMD [\"cat\", \"/g.txt\"]\n"
	ctx1 := writeContext(t, map[string]string{"Dockerfile": df, "f.txt": "one\n"})
	out, err := dockerBuild(t, d, "-t", "c1", ctx1)
	if err != nil || strings.Contains(out, "Using cache") {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	first := imageID(t, d, "c1")
	// The same Dockerfile and files, in another context directory: all cached.
	ctx2 := writeContext(t, map[string]string{"Dockerfile": df, "f.txt": "one\n"})
	out, err = dockerBuild(t, d, "-t", "c2", ctx2)
	if err != nil || strings.Count(out, "Using cache") != 5 {
		t.Fatalf("second build should use the cache 5 times: %v\n%s", err, out)
	}
	if got := imageID(t, d, "c2"); got != first {
		t.Fatalf("cached build made %s, want %s", got, first)
	}
	// A changed file: ARG and ENV still cached, COPY and what follows not.
	if err := os.WriteFile(filepath.Join(ctx2, "f.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = dockerBuild(t, d, "-t", "c3", ctx2)
	if err != nil || strings.Count(out, "Using cache") != 2 {
		t.Fatalf("changed file: %v\n%s", err, out)
	}
	if out, _ := docker(t, d, "run", "--rm", "c3"); out != "two\n" {
		t.Fatalf("c3 runs %q", out)
	}
	// Another build arg value: the ARG step and all after it are new.
	out, err = dockerBuild(t, d, "--build-arg", "V=2", "-t", "c4", ctx1)
	if err != nil || strings.Contains(out, "Using cache") {
		t.Fatalf("build arg: %v\n%s", err, out)
	}
	// --no-cache rebuilds everything.
	out, err = dockerBuild(t, d, "--no-cache", "-t", "c5", ctx1)
	if err != nil || strings.Contains(out, "Using cache") {
		t.Fatalf("--no-cache: %v\n%s", err, out)
	}
	requireClean(t, d)
}

func TestDockerBuildFailingRun(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo ok > /ok\nRUN echo failing; exit 3\nCMD [\"true\"]\n"})
	out, err := dockerBuild(t, d, "-t", "broken", ctx)
	if exitCode(err) != 1 {
		t.Fatalf("failing build: %v\n%s", err, out)
	}
	for _, want := range []string{"Step 3/4 : RUN echo failing; exit 3", "failing\n", "The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := docker(t, d, "image", "inspect", "broken"); err == nil {
		t.Fatalf("a failed build was tagged:\n%s", out)
	}
	requireClean(t, d)
}

func TestDockerBuildDockerignoreAndErrors(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	ctx := writeContext(t, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\n",
		".dockerignore": "*.log\nsecret/\n!secret/keep.txt\n",
		"a.txt":         "a", "b.log": "b", "secret/x": "x", "secret/keep.txt": "k", "sub/c.log": "c",
	})
	if out, err := dockerBuild(t, d, "-q", "-t", "ign", ctx); err != nil || !strings.HasPrefix(lastLine(out), "sha256:") || strings.Contains(out, "Step 1") {
		t.Fatalf("build -q: %v\n%s", err, out)
	}
	out, err := docker(t, d, "run", "--rm", "ign", "find", "/ctx", "-type", "f")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	got := strings.Fields(out)
	want := []string{"/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/a.txt", "/ctx/secret/keep.txt", "/ctx/sub/c.log"}
	sortStrings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("context after .dockerignore (-want +got):\n%s", diff)
	}
	// A symlink in the context can't reach outside it.
	ctx = writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY escape/passwd /p\n"})
	if err := os.Symlink("/etc", filepath.Join(ctx, "escape")); err != nil {
		t.Fatal(err)
	}
	if out, err := dockerBuild(t, d, ctx); err == nil || !strings.Contains(out, "file not found in build context") {
		t.Fatalf("symlink escape: %v\n%s", err, out)
	}
	for name, c := range map[string]struct{ df, want string }{
		"missing base": {"FROM nosuchimage:1\n", "no network"},
		"remote ADD":   {"FROM busybox\nADD https://example.com/x /x\n", "no network access"},
		"bad target":   {"FROM busybox AS a\n", "failed to reach build target"},
		"missing file": {"FROM busybox\nCOPY nothere /x\n", "nothere"},
	} {
		ctx := writeContext(t, map[string]string{"Dockerfile": c.df})
		args := []string{ctx}
		if name == "bad target" {
			args = []string{"--target", "b", ctx}
		}
		if out, err := dockerBuild(t, d, args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	requireClean(t, d)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func lastLine(s string) string {
	f := strings.Split(strings.TrimSpace(s), "\n")
	return f[len(f)-1]
}

// TestBerthBuild drives `berth build` (internal/cli, client.ImageBuild):
// -f outside the context, --target, --label, several -t, --build-arg, -q.
func TestBerthBuild(t *testing.T) {
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	ctx := writeContext(t, map[string]string{"f.txt": "file\n"})
	dfDir := writeContext(t, map[string]string{"Build.df": "FROM busybox AS one\nARG MSG\nRUN echo $MSG > /msg\nFROM one AS two\nCOPY f.txt /f.txt\nFROM two AS three\nRUN false\n"})
	berth := func(args ...string) (string, error) {
		cmd := exec.Command(testutil.BerthBinary(t), append([]string{"-H", d.Host}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := berth("build", "-f", filepath.Join(dfDir, "Build.df"), "--target", "two", "--label", "a=b",
		"-t", "x1", "-t", "x2:v", "--build-arg", "MSG=hi", ctx)
	if err != nil || !strings.Contains(out, "Successfully tagged x2:v") {
		t.Fatalf("berth build: %v\n%s", err, out)
	}
	if imageID(t, d, "x1") != imageID(t, d, "x2:v") {
		t.Fatal("-t x1 and -t x2:v name different images")
	}
	if out, _ := docker(t, d, "run", "--rm", "x1", "cat", "/msg", "/f.txt"); out != "hi\nfile\n" {
		t.Fatalf("x1 has %q", out)
	}
	if out, _ := docker(t, d, "image", "inspect", "--format", "{{.Config.Labels.a}}", "x1"); strings.TrimSpace(out) != "b" {
		t.Fatalf("label a = %q", out)
	}
	out, err = berth("build", "-q", "-f", filepath.Join(dfDir, "Build.df"), "--target", "two", "--label", "a=b", "--build-arg", "MSG=hi", ctx)
	if err != nil || strings.TrimSpace(out) != imageID(t, d, "x1") {
		t.Fatalf("berth build -q = %q (%v), want the cached %s", out, err, imageID(t, d, "x1"))
	}
	requireClean(t, d)
}

// TestBerthBuildContextDir: berth's CLI hands the local daemon its context
// directory (docs/decisions/0096). The daemon copies it as a tarball would
// have carried it (.dockerignore, symlinks kept as links and confined to
// the context), and tells a changed file from its cached sum by its stat
// even when its size and mtime are put back.
func TestBerthBuildContextDir(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	berth := func(args ...string) (string, error) {
		out, err := exec.Command(testutil.BerthBinary(t), append([]string{"-H", d.Host}, args...)...).CombinedOutput()
		return string(out), err
	}
	ctx := writeContext(t, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\n",
		".dockerignore": "*.log\nsecret/\n!secret/keep.txt\n",
		"a.txt":         "a1", "b.log": "b", "secret/x": "x", "secret/keep.txt": "k", "sub/c.log": "c",
	})
	if err := os.Symlink("/etc/passwd", filepath.Join(ctx, "link")); err != nil {
		t.Fatal(err)
	}
	out, err := berth("build", "-q", "-t", "cd", ctx)
	if err != nil {
		t.Fatalf("berth build: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	out, err = docker(t, d, "run", "--rm", "cd", "sh", "-c", "find /ctx ! -type d | sort; readlink /ctx/link; cat /ctx/a.txt")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	want := "/ctx/.dockerignore\n/ctx/Dockerfile\n/ctx/a.txt\n/ctx/link\n/ctx/secret/keep.txt\n/ctx/sub/c.log\n/etc/passwd\na1"
	if out != want {
		t.Fatalf("context in the image:\n%s\nwant:\n%s", out, want)
	}
	if out, err := berth("build", "-q", "-t", "cd", ctx); err != nil || strings.TrimSpace(out) != id {
		t.Fatalf("rebuild = %q (%v), want the cached %s", out, err, id)
	}
	// Same size, mtime put back: only the ctime tells.
	a := filepath.Join(ctx, "a.txt")
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("a2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if out, err := berth("build", "-q", "-t", "cd", ctx); err != nil || strings.TrimSpace(out) == id {
		t.Fatalf("build after a.txt changed = %q (%v): the cached image", out, err)
	}
	if out, _ := docker(t, d, "run", "--rm", "cd", "cat", "/ctx/a.txt"); out != "a2" {
		t.Fatalf("a.txt in the rebuilt image: %q", out)
	}
	// A symlink in the context can't reach outside it.
	esc := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY escape/passwd /p\n"})
	if err := os.Symlink("/etc", filepath.Join(esc, "escape")); err != nil {
		t.Fatal(err)
	}
	if out, err := berth("build", esc); err == nil || !strings.Contains(out, "file not found in build context") {
		t.Fatalf("symlink escape: %v\n%s", err, out)
	}
	// The context path itself may be a symlink.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(ctx, alias); err != nil {
		t.Fatal(err)
	}
	if out, err := berth("build", "-q", alias); err != nil || !strings.HasPrefix(lastLine(out), "sha256:") {
		t.Fatalf("build through a symlinked context: %v\n%s", err, out)
	}
	requireClean(t, d)
}

// lineWatcher signals once the text written to it contains want.
type lineWatcher struct {
	want string
	buf  strings.Builder
	seen chan struct{}
	once bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.once && strings.Contains(w.buf.String(), w.want) {
		w.once = true
		close(w.seen)
	}
	return len(p), nil
}

// TestBuildCancel cancels a build while its RUN runs: the container, its
// root filesystem and the context directory go, and nothing is tagged.
func TestBuildCancel(t *testing.T) {
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	ctxDir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"})
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarContext(pw, ctxDir)) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &lineWatcher{want: "started", seen: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := d.Client.ImageBuild(ctx, pr, client.BuildOptions{Tags: []string{"cancelled"}}, w)
		errc <- err
	}()
	select {
	case <-w.seen:
	case err := <-errc:
		t.Fatalf("build ended before RUN started: %v\n%s", err, w.buf.String())
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	// The daemon cleans up after the request is gone: poll for it.
	for i := 0; ; i++ {
		l := leftovers(t, d)
		if l == "" {
			break
		}
		if i > 200 {
			t.Fatalf("left behind after cancel: %s", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	requireClean(t, d) // and it stays so
	if out, err := docker(t, d, "image", "inspect", "cancelled"); err == nil {
		t.Fatalf("a cancelled build was tagged:\n%s", out)
	}
}

func tarContext(w io.Writer, dir string) error {
	return testutil.TarDir(w, dir)
}

// TestBuildCrashLeftovers: a build directory and a RUN container a crashed
// daemon left behind are gone after the next start.
func TestBuildCrashLeftovers(t *testing.T) {
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	if out, err := docker(t, d, "create", "--label", "io.berth.build=intermediate", "busybox", "true"); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	stale := filepath.Join(d.DataRoot, "tmp", "build-123", "context")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Kill()
	testutil.RestartDaemon(t, d)
	if _, err := os.Stat(filepath.Dir(stale)); !os.IsNotExist(err) {
		t.Fatalf("stale build dir still there: %v", err)
	}
	if out, err := docker(t, d, "ps", "-aq"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("stale build container still there: %v %q", err, out)
	}
}

// TestDockerBuildDockerfileElsewhere: the docker CLI's -f outside the
// context and -f - (Dockerfile on stdin) both reach berth's builder.
func TestDockerBuildDockerfileElsewhere(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	testutil.LoadImage(t, d, testutil.BusyboxImage(t, "busybox:latest"))
	ctx := writeContext(t, map[string]string{"f.txt": "f\n"})
	other := writeContext(t, map[string]string{"My.Dockerfile": "FROM busybox\nCOPY f.txt /f.txt\nCMD [\"cat\", \"/f.txt\"]\n"})
	if out, err := dockerBuild(t, d, "-f", filepath.Join(other, "My.Dockerfile"), "-t", "elsewhere", ctx); err != nil {
		t.Fatalf("-f outside the context: %v\n%s", err, out)
	}
	if out, _ := docker(t, d, "run", "--rm", "elsewhere"); out != "f\n" {
		t.Fatalf("elsewhere runs %q", out)
	}
	cmd := exec.Command("docker", "build", "-f", "-", "-t", "stdin", ctx)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader("FROM busybox\nENV FROM_STDIN=1\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("-f -: %v\n%s", err, out)
	}
	if out, _ := docker(t, d, "image", "inspect", "--format", "{{.Config.Env}}", "stdin"); !strings.Contains(out, "FROM_STDIN=1") {
		t.Fatalf("stdin image env %q", out)
	}
	// --network none reaches the RUN containers: only lo.
	netCtx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN cat /proc/net/dev; ! grep -q eth0 /proc/net/dev\n"})
	if out, err := dockerBuild(t, d, "--network", "none", netCtx); err != nil {
		t.Fatalf("--network none: %v\n%s", err, out)
	}
	requireClean(t, d)
}

// applyModes sets the file modes a case lists in its "modes" file
// ("b.txt 0600" per line): git keeps only the executable bit, and the
// goldens were recorded from files with these modes.
func applyModes(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "modes"))
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var name string
		var mode os.FileMode
		if _, err := fmt.Sscanf(line, "%s %o", &name, &mode); err != nil {
			t.Fatalf("%s/modes: %q: %v", dir, line, err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}
