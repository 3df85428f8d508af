package ociruntime

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// startSleeper creates and starts a container whose init sleeps, and
// deletes it at the end of the test.
func startSleeper(t *testing.T, r *Runtime, id string, edit func(*specs.Spec)) int {
	t.Helper()
	b := bundle(t, "sleep 1000", edit)
	p, err := r.Create(context.Background(), id, CreateOpts{Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Delete(context.Background(), id, true)
		p.Wait()
	})
	if err := r.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return p.Pid()
}

func execOut(t *testing.T, r *Runtime, id string, p *specs.Process) (int, string, error) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	proc, err := r.Exec(context.Background(), id, p, ExecOpts{Stdout: out, Stderr: out})
	if err != nil {
		return -1, "", err
	}
	code, err := proc.Wait()
	b, _ := os.ReadFile(out.Name())
	return code, string(b), err
}

func shProcess(script string) *specs.Process {
	return &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/",
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, NoNewPrivileges: true,
		Capabilities: DefaultSpec(false).Process.Capabilities}
}

func TestExec(t *testing.T) {
	testutil.RequireRoot(t)
	r := testRuntime(t)
	initPid := startSleeper(t, r, "e1", nil)
	t.Run("output and exit code", func(t *testing.T) {
		code, out, err := execOut(t, r, "e1", shProcess("echo hi; hostname; exit 3"))
		if err != nil || code != 3 || out != "hi\nrunc\n" {
			t.Fatalf("code %d err %v output %q", code, err, out)
		}
	})
	t.Run("namespaces and cgroup of the init", func(t *testing.T) {
		// The exec'd process reports its namespaces; the host compares.
		code, out, err := execOut(t, r, "e1", shProcess(
			`for n in pid net mnt uts ipc cgroup; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline; echo; set -- /proc/[0-9]*; echo $#`))
		if err != nil || code != 0 {
			t.Fatalf("code %d err %v output %q", code, err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for i, n := range []string{"pid", "net", "mnt", "uts", "ipc", "cgroup"} {
			want, _ := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/" + n)
			if lines[i] != want {
				t.Errorf("%s namespace %s, init's %s", n, lines[i], want)
			}
		}
		if lines[6] != "sleep\x001000\x00" && lines[6] != "sh\x00-c\x00sleep 1000\x00" {
			t.Errorf("pid 1 of the exec'd process is %q, not the container's init", lines[6])
		}
		// The shell counts /proc's pids itself: with `ls | grep` the count
		// depended on whether grep was forked before ls read /proc.
		if lines[7] != "2" { // init, sh
			t.Errorf("the exec'd process sees %s processes, want 2 (it sees the host's /proc?)", lines[7])
		}
	})
	t.Run("in the container's cgroup", func(t *testing.T) {
		proc, err := r.Exec(context.Background(), "e1", shProcess("sleep 1000"), ExecOpts{})
		if err != nil {
			t.Fatal(err)
		}
		defer proc.Wait()
		defer proc.proc.Kill()
		pids, err := r.Ps(context.Background(), "e1")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range pids {
			found = found || p == proc.Pid()
		}
		if !found {
			t.Errorf("exec'd pid %d not in the container's cgroup %v", proc.Pid(), pids)
		}
		want, _ := os.ReadFile("/proc/" + strconv.Itoa(initPid) + "/cgroup")
		got, _ := os.ReadFile("/proc/" + strconv.Itoa(proc.Pid()) + "/cgroup")
		if string(got) != string(want) {
			t.Errorf("cgroups:\n%s\ninit's:\n%s", got, want)
		}
	})
	t.Run("no host fd or cwd (CVE-2024-21626)", func(t *testing.T) {
		f, err := os.Open("/etc/hostname") // not close-on-exec in the child: must not reach it
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := shProcess(`ls /proc/$$/fd; readlink /proc/$$/cwd; pwd -P`)
		p.Cwd = "/tmp"
		code, out, err := execOut(t, r, "e1", p)
		if err != nil || code != 0 || out != "0\n1\n2\n/tmp\n/tmp\n" {
			t.Errorf("code %d err %v: fds and cwd %q, want only 0 1 2 and /tmp", code, err, out)
		}
	})
	t.Run("user and no capabilities", func(t *testing.T) {
		p := shProcess(`id -u; id -g; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status`)
		p.User = specs.User{UID: 1000, GID: 1000}
		p.Capabilities = nil
		code, out, err := execOut(t, r, "e1", p)
		if err != nil || code != 0 || out != "1000\n1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n" {
			t.Errorf("code %d err %v output %q", code, err, out)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		_, _, err := execOut(t, r, "e1", &specs.Process{Args: []string{"nosuchbinary"}, Cwd: "/"})
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "nosuchbinary") {
			t.Errorf("err %v, want NotFound naming the binary", err)
		}
	})
}

func TestExecRefused(t *testing.T) {
	testutil.RequireRoot(t)
	r := testRuntime(t)
	if _, err := r.Exec(context.Background(), "nosuch", shProcess("true"), ExecOpts{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("no such container: %v", err)
	}
	b := bundle(t, "true", nil)
	if _, err := r.Run(context.Background(), "gone", CreateOpts{Bundle: b}, false); err != nil {
		t.Fatal(err)
	}
	p, err := r.Create(context.Background(), "stopped", CreateOpts{Bundle: bundle(t, "true", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Delete(context.Background(), "stopped", true)
	r.Start(context.Background(), "stopped")
	p.Wait()
	if _, err := r.Exec(context.Background(), "stopped", shProcess("true"), ExecOpts{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("stopped container: %v, want Conflict", err)
	}
	// A container with a user namespace, as its state records it (making
	// one needs a rootfs the mapped root can reach).
	startSleeper(t, r, "userns", nil)
	rec, err := r.load("userns")
	if err != nil {
		t.Fatal(err)
	}
	rec.Config.Linux.Namespaces = append(rec.Config.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	if err := writeRecord(r.dir("userns"), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(context.Background(), "userns", shProcess("true"), ExecOpts{}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("user namespace: %v, want NotImplemented", err)
	}
}

// hookedCgroup runs onApply with the pid of a process being moved in: the
// exec'd init, caught before it is sent its config.
type hookedCgroup struct {
	cgroupManager
	onApply func(pid int)
}

// JoinThread declines, as on cgroup v2, so the init is moved in by Apply.
func (h hookedCgroup) JoinThread() (func() error, error) {
	return nil, errdefs.NotImplemented(errors.New("test: move the child in after the fork"))
}

func (h hookedCgroup) Apply(pid int) error {
	if pid > 0 {
		h.onApply(pid)
	}
	return h.cgroupManager.Apply(pid)
}

// TestExecInitBinaryNotWritable is the CVE-2019-5736 class for exec: a
// process in the container that gets hold of the exec'd init's
// /proc/<pid>/exe while it runs cannot write the host binary through it,
// then or after the init has exec'd away.
func TestExecInitBinaryNotWritable(t *testing.T) {
	testutil.RequireRoot(t)
	r := testRuntime(t)
	startSleeper(t, r, "e2", nil)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	saved := newCgroupManager
	defer func() { newCgroupManager = saved }()
	exeFD := -1
	newCgroupManager = func(path string) (cgroupManager, error) {
		m, err := saved(path)
		if err != nil {
			return nil, err
		}
		return hookedCgroup{cgroupManager: m, onApply: func(pid int) {
			exeFD, _ = unix.Open("/proc/"+strconv.Itoa(pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
			if w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(exeFD), unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(w)
				t.Error("the running exec init's binary opened for writing")
			}
		}}, nil
	}
	code, out, err := execOut(t, r, "e2", shProcess("echo ok"))
	newCgroupManager = saved
	if err != nil || code != 0 || out != "ok\n" {
		t.Fatalf("exec: code %d err %v out %q", code, err, out)
	}
	if exeFD < 0 {
		t.Fatal("the exec'd init was not caught")
	}
	defer unix.Close(exeFD)
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(exeFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Pwrite(w, []byte("PWNED"), 0)
		unix.Close(w)
	}
	after, _ := os.ReadFile(self)
	if string(after) != string(before) {
		t.Fatal("the host binary was overwritten through the exec'd init's /proc/pid/exe")
	}
	if err == nil {
		t.Error("the exec init's binary reopened for writing after it exec'd away")
	}
}
