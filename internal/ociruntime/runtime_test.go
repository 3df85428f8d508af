package ociruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

// The init works on the main thread, as cmd/berth-init arranges.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		InitMain()
	}
	os.Exit(m.Run())
}

// testRuntime is a Runtime on a temp state root whose init is this test binary.
func testRuntime(t *testing.T) *Runtime {
	return &Runtime{Root: t.TempDir(), InitArgs: []string{"ociruntime.test", "init"}}
}

// bundle writes a busybox bundle whose process runs sh -c script.
func bundle(t *testing.T, script string, edit func(*specs.Spec)) string {
	dir := t.TempDir()
	rootfs := testutil.BusyboxRootfs(t)
	if err := os.Rename(rootfs, filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	s := DefaultSpec(false)
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", script}
	if edit != nil {
		edit(s)
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs a container to completion and returns its exit code and output.
func run(t *testing.T, script string, edit func(*specs.Spec)) (int, string, error) {
	t.Helper()
	r := testRuntime(t)
	b := bundle(t, script, edit)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	code, err := r.Run(context.Background(), "c1", CreateOpts{Bundle: b, Stdout: out, Stderr: out}, false)
	data, _ := os.ReadFile(out.Name())
	return code, string(data), err
}

func TestRunSmoke(t *testing.T) {
	testutil.RequireRoot(t)
	code, out, err := run(t, "echo hello; hostname; id -u; cat /proc/self/status | grep CapEff", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "hello\nrunc\n0\n") {
		t.Fatalf("code %d, output:\n%s", code, out)
	}
	if !strings.Contains(out, "CapEff:\t0000000020000420") {
		t.Errorf("capabilities: %s", out)
	}
	_ = bytes.MinRead
}

// TestSpecForInit: the init gets neither linux.seccomp nor
// linux.resources (the parent applies both), and the caller's spec keeps
// them.
func TestSpecForInit(t *testing.T) {
	s := &specs.Spec{Hostname: "h", Linux: &specs.Linux{
		Seccomp:     &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		Resources:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}},
		MaskedPaths: []string{"/proc/kcore"},
	}}
	got := specForInit(s)
	if got.Linux.Seccomp != nil || got.Linux.Resources != nil {
		t.Errorf("the init's spec keeps seccomp %v, resources %v", got.Linux.Seccomp, got.Linux.Resources)
	}
	if got.Hostname != "h" || len(got.Linux.MaskedPaths) != 1 {
		t.Errorf("the init's spec lost other fields: %+v", got)
	}
	if s.Linux.Seccomp == nil || s.Linux.Resources == nil {
		t.Error("specForInit changed the caller's spec")
	}
	if plain := (&specs.Spec{}); specForInit(plain) != plain {
		t.Error("a spec with nothing to strip is copied")
	}
}

// TestKillAfterStartNoWait: StartNoWait returns before the init has
// executed the user's process; a Kill right then waits for that exec, so
// the signal is the process's and never the init's (which would drop it).
func TestKillAfterStartNoWait(t *testing.T) {
	testutil.RequireRoot(t)
	r := testRuntime(t)
	ctx := context.Background()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p, err := r.Create(ctx, "c1", CreateOpts{Bundle: bundle(t, "exec sleep 10", nil), Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(ctx, "c1", true); p.Wait() }()
	initExe := exeID(p.Pid())
	if initExe == nil {
		t.Fatal("no /proc/<pid>/exe for the init")
	}
	if err := r.StartNoWait(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(ctx, "c1", unix.SIGCONT, false); err != nil {
		t.Fatal(err)
	}
	if got := exeID(p.Pid()); got == nil || *got == *initExe {
		t.Fatalf("Kill returned while the init had not executed the process (exe %v, init %v)", got, initExe)
	}
}

// TestWaitExec: waitExec returns once the process runs another program
// than the init's, not before (here the "init" is a shell that execs sleep
// after 50 ms), and at once for a record without InitExe.
func TestWaitExec(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.05; exec sleep 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	start, _, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	rec := &record{State: specs.State{Pid: pid}, StartTime: start, InitExe: exeID(pid)}
	if rec.InitExe == nil {
		t.Fatal("no /proc/<pid>/exe")
	}
	waitExec(context.Background(), &record{State: specs.State{Pid: pid}, StartTime: start})
	if got := exeID(pid); got == nil || *got != *rec.InitExe {
		t.Fatal("the shell had exec'd already: the test proves nothing")
	}
	waitExec(context.Background(), rec)
	if got := exeID(pid); got == nil || *got == *rec.InitExe {
		t.Fatalf("waitExec returned before the exec (exe %v)", got)
	}
}
