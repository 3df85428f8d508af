package ociruntime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

// waitSpare waits for r's idle spare and returns its pid.
func waitSpare(t *testing.T, r *Runtime) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.spares.mu.Lock()
		sp := r.spares.idle
		r.spares.mu.Unlock()
		if sp != nil {
			return sp.Process.Pid
		}
	}
	t.Fatal("no spare init was started")
	return 0
}

// spareRuntime is a test runtime with Spare set after one container ran
// (a create that asks for a spare) and its spare started, whose pid it
// returns.
func spareRuntime(t *testing.T) (*Runtime, int) {
	t.Helper()
	r := testRuntime(t)
	r.Spare = true
	t.Cleanup(r.CloseSpare)
	if _, code, out := createRun(t, r, "first", bundle(t, "true", nil)); code != 0 {
		t.Fatalf("first container: code %d: %s", code, out)
	}
	return r, waitSpare(t, r)
}

// createRun creates, starts and waits for container id, and returns its
// init's pid, its exit code and its output.
func createRun(t *testing.T, r *Runtime, id, b string) (int, int, string) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx := context.Background()
	p, err := r.Create(ctx, id, CreateOpts{Bundle: b, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	defer r.Delete(ctx, id, true)
	if err := r.Start(ctx, id); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	code, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out.Name())
	return p.Pid(), code, string(data)
}

// TestSpareInit: with Spare set, a container created once a spare waits is
// started by that spare, and is what a forked init makes of it: its own
// cgroup, the mounts made after the spare was born (the rootfs is one of
// those in the daemon), its stdio, pid 1, a joined network namespace, no
// fd of the runtime's, the bundle as the hooks' cwd.
func TestSpareInit(t *testing.T) {
	testutil.RequireRoot(t)
	r, sparePid := spareRuntime(t)

	// A network namespace to join, held by a sleeping process.
	holder := exec.Command("sleep", "1000")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	nsPath := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	wantNS, err := os.Readlink(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	hookOut := filepath.Join(t.TempDir(), "hook-cwd")
	b := bundle(t, `echo pid=$$; grep ':pids:' /proc/self/cgroup; cat /after/marker; readlink /proc/self/ns/net; ls /proc/self/fd | tr '\n' ' '; echo; echo err >&2`, func(s *specs.Spec) {
		var nss []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.NetworkNamespace:
				ns.Path = nsPath
			case specs.CgroupNamespace:
				continue // /proc/self/cgroup shows the host's path
			}
			nss = append(nss, ns)
		}
		s.Linux.Namespaces = nss
		s.Linux.CgroupsPath = "/berth-spare-test/" + strconv.Itoa(os.Getpid())
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "pwd > " + hookOut}}}}
	})
	defer testutil.RemoveCgroupParent("berth-spare-test")
	// A mount made after the spare was born.
	after := filepath.Join(b, "rootfs", "after")
	os.MkdirAll(after, 0o755)
	if err := unix.Mount("tmpfs", after, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(after, unix.MNT_DETACH)
	os.WriteFile(filepath.Join(after, "marker"), []byte("mounted after\n"), 0o644)

	pid, code, out := createRun(t, r, "adopted", b)
	if pid != sparePid {
		t.Fatalf("the container's init is pid %d, not the spare %d: not adopted", pid, sparePid)
	}
	lines := strings.Split(out, "\n")
	want := []string{"pid=1", ":pids:/berth-spare-test/" + strconv.Itoa(os.Getpid()), "mounted after", wantNS, "0 1 2 3 ", "err", ""}
	ok := code == 0 && len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasSuffix(lines[i], want[i])
	}
	if !ok {
		t.Errorf("code %d, output:\n%s\nwant lines ending:\n%s", code, out, strings.Join(want, "\n"))
	}
	if cwd, err := os.ReadFile(hookOut); err != nil || strings.TrimSpace(string(cwd)) != b {
		t.Errorf("createContainer hook ran in %q (%v), want the bundle %s", cwd, err, b)
	}
}

// TestSpareGone: a spare that died is not used; the create forks its init,
// and the next spare is started.
func TestSpareGone(t *testing.T) {
	testutil.RequireRoot(t)
	r, sparePid := spareRuntime(t)
	unix.Kill(sparePid, unix.SIGKILL)
	// Wait until it is a zombie: it is reaped when the create finds it dead.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(sparePid) + "/stat"); strings.Contains(string(b), ") Z ") {
			break
		}
	}
	pid, code, out := createRun(t, r, "second", bundle(t, "echo ok", nil))
	if code != 0 || out != "ok\n" || pid == sparePid {
		t.Fatalf("after the spare died: pid %d (spare %d), code %d, output %q", pid, sparePid, code, out)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(sparePid)); err == nil {
		t.Errorf("the dead spare %d was not reaped", sparePid)
	}
	if next := waitSpare(t, r); next == sparePid {
		t.Errorf("no new spare")
	}
}

// TestSpareExpires: a spare nobody takes ends after SpareTTL, reaped.
func TestSpareExpires(t *testing.T) {
	testutil.RequireRoot(t)
	saved := SpareTTL
	SpareTTL = 200 * time.Millisecond
	defer func() { SpareTTL = saved }()
	r, sparePid := spareRuntime(t)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(sparePid)); err != nil {
			r.spares.mu.Lock()
			idle := r.spares.idle
			r.spares.mu.Unlock()
			if idle != nil {
				t.Error("the expired spare is still the idle one")
			}
			return
		}
	}
	t.Fatalf("the spare %d is still there after its TTL", sparePid)
}

// TestSpareFits: what a spare can serve.
func TestSpareFits(t *testing.T) {
	base := uintptr(spareFlags | unix.CLONE_NEWNS)
	net := []nsJoin{{typ: "network", path: "/x"}}
	for _, c := range []struct {
		name string
		plan nsPlan
		o    CreateOpts
		want bool
	}{
		{"docker's namespaces", nsPlan{cloneFlags: base, newCgroup: true}, CreateOpts{}, true},
		{"a joined network namespace", nsPlan{cloneFlags: base &^ unix.CLONE_NEWNET, joins: net}, CreateOpts{}, true},
		{"a joined ipc namespace", nsPlan{cloneFlags: base &^ unix.CLONE_NEWIPC, joins: []nsJoin{{typ: "ipc"}}}, CreateOpts{}, false},
		{"a user namespace", nsPlan{cloneFlags: base | unix.CLONE_NEWUSER}, CreateOpts{}, false},
		{"the host's pid namespace", nsPlan{cloneFlags: base &^ unix.CLONE_NEWPID}, CreateOpts{}, false},
		{"no mount namespace", nsPlan{cloneFlags: base &^ unix.CLONE_NEWNS, hostMountNS: true}, CreateOpts{}, false},
		{"preserved fds", nsPlan{cloneFlags: base}, CreateOpts{ExtraFiles: []*os.File{os.Stdin}}, false},
	} {
		if got := spareFits(c.plan, c.o); got != c.want {
			t.Errorf("%s: fits %v, want %v", c.name, got, c.want)
		}
	}
}

// TestEagerInit: with EagerInit, a create starts its init before it reads
// the spec and uses it when the spec fits; when it does not (here: the
// host's network), it forks one as before, and the unused init ends.
func TestEagerInit(t *testing.T) {
	testutil.RequireRoot(t)
	r := testRuntime(t)
	r.EagerInit = true
	if _, code, out := createRun(t, r, "fits", bundle(t, "echo $$; ls /proc/self/fd | tr '\n' ' '", nil)); code != 0 || out != "1\n0 1 2 3 " {
		t.Fatalf("code %d, output %q", code, out)
	}
	hostNet := func(s *specs.Spec) {
		var nss []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.NetworkNamespace {
				nss = append(nss, ns)
			}
		}
		s.Linux.Namespaces = nss
	}
	if _, code, out := createRun(t, r, "unfit", bundle(t, "echo ok", hostNet)); code != 0 || out != "ok\n" {
		t.Fatalf("code %d, output %q", code, out)
	}
	// No init is left: every child of this process is gone.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		kids := ""
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
			kids += string(b)
		}
		if strings.TrimSpace(kids) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("children left: %s", kids)
		}
	}
}

// TestSpareHoldsNoHostFD is the CVE-2024-21626 class for an init started
// ahead: adopted and waiting to start, it holds no host file or directory
// (the Go runtime's own cgroup files included), only its sockets, pipes and
// the container's exec.fifo.
func TestSpareHoldsNoHostFD(t *testing.T) {
	testutil.RequireRoot(t)
	r, sparePid := spareRuntime(t)
	ctx := context.Background()
	p, err := r.Create(ctx, "held", CreateOpts{Bundle: bundle(t, "true", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Delete(ctx, "held", true); p.Wait() }()
	if p.Pid() != sparePid {
		t.Fatalf("not adopted: pid %d, spare %d", p.Pid(), sparePid)
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.Pid()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, _ := os.Readlink("/proc/" + strconv.Itoa(p.Pid()) + "/fd/" + e.Name())
		if n, _ := strconv.Atoi(e.Name()); n <= 2 {
			continue
		}
		if !strings.HasPrefix(target, "socket:") && !strings.HasPrefix(target, "pipe:") &&
			!strings.HasPrefix(target, "anon_inode:") && !strings.HasSuffix(target, "/exec.fifo") && target != "/dev/null" {
			t.Errorf("the adopted init holds fd %s -> %s", e.Name(), target)
		}
	}
}

// TestSmallPidsLimit: a pids.max of 1 holds for the container's process,
// and does not kill its init while that sets up, forked (born in the cgroup
// with its Go runtime still starting threads) or adopted.
func TestSmallPidsLimit(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("no v1 pids hierarchy")
	}
	r := testRuntime(t)
	r.Spare = true
	defer r.CloseSpare()
	one := int64(1)
	limit := func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &one}}
		s.Linux.CgroupsPath = "/berth-pids-test/" + strconv.Itoa(os.Getpid())
	}
	defer testutil.RemoveCgroupParent("berth-pids-test")
	for _, id := range []string{"forked", "adopted"} {
		if id == "adopted" {
			waitSpare(t, r)
		}
		_, code, out := createRun(t, r, id, bundle(t, "echo ok; true | true && echo forked", limit))
		if code == 0 || !strings.HasPrefix(out, "ok\n") || strings.Contains(out, "forked") {
			t.Errorf("%s: code %d, output %q: want ok, then a refused fork", id, code, out)
		}
	}
}
