package testutil

import (
	"bytes"
	"context"
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
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/berth")
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
	b, err := os.ReadFile(filepath.Join(execRoot, "monitor.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 500 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
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
