package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth/berth/client"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// BerthBinary builds ./cmd/berth once per test process and returns its path.
// BERTH_BINARY, when set, names a binary to use instead.
func BerthBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-buildvcs=false", "-o", buildPath, "./cmd/berth")
		cmd.Dir = moduleRoot()
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build berth: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// Main runs a test package's tests and then removes what the package's
// tests built (the berth binary). Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Daemon is a berth daemon a test started on its own data and exec roots.
type Daemon struct {
	Host     string // unix:///... address to reach it
	Socket   string
	DataRoot string
	ExecRoot string
	// HostNetNS is the network namespace that plays the host for it.
	HostNetNS string
	Client    *client.Client
	cmd       *exec.Cmd
	logs      *bytes.Buffer
}

// RestartDaemon starts a new daemon on the roots and socket of d, which
// must have stopped (Stop or Kill).
func RestartDaemon(t testing.TB, d *Daemon, extraArgs ...string) *Daemon {
	t.Helper()
	return startDaemon(t, d.DataRoot, d.ExecRoot, d.Socket, extraArgs)
}

// StartDaemon starts `berth daemon` on fresh roots under a DataRoot and
// waits until it answers. It is stopped, and its mounts removed, when the
// test ends; its log is printed if the test failed.
func StartDaemon(t testing.TB, extraArgs ...string) *Daemon {
	t.Helper()
	root := DataRoot(t)
	return startDaemon(t, filepath.Join(root, "data"), filepath.Join(root, "exec"), filepath.Join(root, "exec", "berth.sock"), extraArgs)
}

func startDaemon(t testing.TB, dataRoot, execRoot, socket string, extraArgs []string) *Daemon {
	t.Helper()
	bin := BerthBinary(t)
	d := &Daemon{DataRoot: dataRoot, ExecRoot: execRoot, Socket: socket, logs: &bytes.Buffer{}}
	d.Host = "unix://" + d.Socket
	// Every test daemon gets a fresh network namespace as its "host": its
	// bridges, nftables rules and DNS servers never touch the machine's.
	d.HostNetNS = filepath.Join(filepath.Dir(dataRoot), "hostns")
	if err := NewNetNS(d.HostNetNS); err != nil {
		t.Fatalf("host network namespace for the daemon: %v", err)
	}
	args := append([]string{"daemon", "--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "-H", d.Host, "--host-netns", d.HostNetNS}, extraArgs...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() { d.Stop(t) })
	c, err := client.New(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	d.Client = c
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not answer within 20s: %v\nlog:\n%s", err, d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckMainThreads fails t unless the main threads of the daemon and its
// monitor (what /proc/PID shows) are in the test's mount and network
// namespaces: no goroutine that joined a container's was left on them.
func (d *Daemon) CheckMainThreads(t testing.TB) {
	t.Helper()
	pids := map[string]int{"daemon": d.cmd.Process.Pid}
	if pid, ok := monitorPid(d.ExecRoot); ok {
		pids["monitor"] = pid
	}
	for name, pid := range pids {
		for _, ns := range []string{"mnt", "net"} {
			want, _ := os.Readlink("/proc/thread-self/ns/" + ns)
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			if err != nil || got != want {
				t.Errorf("the %s's main thread is in %s namespace %s (%v), want the host's %s", name, ns, got, err, want)
			}
		}
	}
}

// Stop ends the daemon with SIGTERM (SIGKILL after 15s). Safe to call twice.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if d.cmd == nil || d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	d.Client.Close()
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Errorf("daemon ignored SIGTERM for 15s")
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.logs)
		if b, err := os.ReadFile(filepath.Join(d.ExecRoot, "monitor.log")); err == nil {
			t.Logf("monitor log:\n%s", b)
		}
	}
	StopMonitor(d.ExecRoot)
}

// StopMonitor ends the monitor a daemon with this exec root started, so a
// test leaves no process behind (it would exit by itself once idle).
func StopMonitor(execRoot string) {
	pid, ok := monitorPid(execRoot)
	if !ok {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(pid, 2*time.Second) {
		return
	}
	// It keeps running while containers do (as it must for a real
	// daemon); a test's containers end with the test: kill them, their
	// cgroups and then the monitor.
	for _, child := range childrenOf(pid) {
		cgroups := cgroupDirsOf(child)
		syscall.Kill(child, syscall.SIGKILL)
		waitGone(child, 5*time.Second)
		for _, dir := range cgroups {
			os.Remove(dir)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(pid, 5*time.Second)
}

// monitorPid reads the pid of the monitor a daemon with this exec root
// started.
func monitorPid(execRoot string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(execRoot, "monitor.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// waitGone polls until pid no longer exists (a zombie counts as gone).
func waitGone(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
	}
	return false
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// cgroupDirsOf lists the cgroup directories pid is in, on every mounted
// hierarchy under /sys/fs/cgroup (v1 and v2).
func cgroupDirsOf(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		ctrl := parts[1]
		switch {
		case ctrl == "":
			ctrl = "unified"
			if _, err := os.Stat("/sys/fs/cgroup/unified"); err != nil {
				ctrl = ""
			}
		case strings.HasPrefix(ctrl, "name="):
			ctrl = strings.TrimPrefix(ctrl, "name=")
		}
		for _, c := range strings.Split(ctrl, ",") {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", c, parts[2]))
		}
	}
	return dirs
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() {
	if d.cmd != nil && d.cmd.Process != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
	}
}

// LoadImage loads the image archive at path into d, as `docker load`.
func LoadImage(t testing.TB, d *Daemon, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := d.Client.ImageLoad(context.Background(), f); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
}
