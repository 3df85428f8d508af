// Package runtime_test is the bundle-level suite for an OCI runtime with
// runc's command line: each test writes a busybox bundle from the runtime's
// own `spec` default plus changes, runs it, and checks what the container
// sees from inside. It runs against `berth runtime` (built with
// testutil.BerthBinary) by default, or against any runc-compatible binary
// named by BERTH_TEST_RUNTIME (e.g. /usr/sbin/runc), which proves the suite
// tests the runtime-spec, not berth's quirks. All tests need root.
package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// runtimeUnderTest is how the runtime is invoked, without global flags.
type runtimeUnderTest struct {
	argv   []string // e.g. ["/usr/sbin/runc"] or [".../berth", "runtime"]
	binary string   // the executable file, to look for it among processes
	isRunc bool
}

func newRuntime(t *testing.T) *runtimeUnderTest {
	t.Helper()
	testutil.RequireRoot(t)
	if p := os.Getenv("BERTH_TEST_RUNTIME"); p != "" {
		return &runtimeUnderTest{argv: []string{p}, binary: p, isRunc: filepath.Base(p) == "runc"}
	}
	b := testutil.BerthBinary(t)
	return &runtimeUnderTest{argv: []string{b, "runtime"}, binary: b}
}

// harness is one test's runtime with its own state root.
type harness struct {
	t    *testing.T
	rt   *runtimeUnderTest
	root string
}

func newHarness(t *testing.T) *harness {
	rt := newRuntime(t)
	h := &harness{t: t, rt: rt, root: filepath.Join(testutil.DataRoot(t), "state")}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup force-deletes whatever containers the test left.
func (h *harness) cleanup() {
	ents, _ := os.ReadDir(h.root)
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "@") {
			h.cmd("delete", "--force", e.Name()).Run()
		}
	}
}

func (h *harness) cmd(args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, h.rt.argv...), "--root", h.root), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// result is what one runtime invocation printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	c := h.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("%v: %v", c.Args, err)
	}
	return r
}

// must runs args and fails the test unless they exit 0.
func (h *harness) must(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

var seq atomic.Int64

// id returns a fresh container id.
func id(t *testing.T) string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), seq.Add(1))
}

// bundle writes a busybox bundle whose config is the runtime's `spec`
// default, not a terminal, running args, changed by mutate.
func (h *harness) bundle(mutate func(*specs.Spec), args ...string) string {
	h.t.Helper()
	dir := filepath.Join(h.t.TempDir(), "bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := testutil.MakeBusyboxRootfs(filepath.Join(dir, "rootfs")); err != nil {
		h.t.Fatal(err)
	}
	h.must("spec", "--bundle", dir)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		h.t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	if mutate != nil {
		mutate(&s)
	}
	writeSpec(h.t, dir, &s)
	return dir
}

func writeSpec(t *testing.T, dir string, s *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runIn runs sh -c script in a fresh container from a default bundle
// changed by mutate, and returns its output.
func (h *harness) runIn(mutate func(*specs.Spec), script string) result {
	h.t.Helper()
	b := h.bundle(mutate, "sh", "-c", script)
	return h.run("run", "--bundle", b, id(h.t))
}

// mustIn is runIn that fails the test unless the container exits 0.
func (h *harness) mustIn(mutate func(*specs.Spec), script string) string {
	h.t.Helper()
	r := h.runIn(mutate, script)
	if r.code != 0 {
		h.t.Fatalf("container %q: exit %d\nstdout: %s\nstderr: %s", script, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// state returns the runtime's `state` of id.
func (h *harness) state(id string) specs.State {
	h.t.Helper()
	r := h.must("state", id)
	var s specs.State
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		h.t.Fatalf("state %s: %v\n%s", id, err, r.stdout)
	}
	return s
}

// waitStatus polls `state` until id has status want.
func (h *harness) waitStatus(id string, want specs.ContainerState) specs.State {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.state(id)
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container %s: status %q, want %q", id, s.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// create runs `create` with stdio on files (a pipe would be held open by
// the container and the command's output never end).
func (h *harness) create(bundle, id string, extra ...string) (stdout *os.File) {
	h.t.Helper()
	out, err := os.CreateTemp(h.t.TempDir(), "out")
	if err != nil {
		h.t.Fatal(err)
	}
	errf, err := os.CreateTemp(h.t.TempDir(), "err")
	if err != nil {
		h.t.Fatal(err)
	}
	defer errf.Close()
	c := h.cmd(append(append([]string{"create", "--bundle", bundle}, extra...), id)...)
	c.Stdout, c.Stderr = out, errf
	if err := c.Run(); err != nil {
		b, _ := os.ReadFile(errf.Name())
		h.t.Fatalf("create %s: %v\n%s", id, err, b)
	}
	return out
}

// field returns the value of "Key:" in a /proc/<pid>/status-like text.
func field(t *testing.T, text, key string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in:\n%s", key, text)
	return ""
}
