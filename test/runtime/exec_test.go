package runtime_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sleeper creates and starts a container whose init sleeps.
func (h *harness) sleeper() (string, int) {
	h.t.Helper()
	c := id(h.t)
	h.create(h.bundle(nil, "sleep", "1000"), c).Close()
	h.must("start", c)
	return c, h.waitStatus(c, specs.StateRunning).Pid
}

func TestExec(t *testing.T) {
	h := newHarness(t)
	c, initPid := h.sleeper()
	t.Run("output and exit code", func(t *testing.T) {
		r := h.run("exec", c, "sh", "-c", "echo hi; echo err >&2; exit 3")
		if r.code != 3 || r.stdout != "hi\n" || r.stderr != "err\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("flags", func(t *testing.T) {
		r := h.must("exec", "--cwd", "/tmp", "-e", "FOO=bar", "--user", "1000:1001", c,
			"sh", "-c", "pwd; echo $FOO; id -u; id -g")
		if r.stdout != "/tmp\nbar\n1000\n1001\n" {
			t.Errorf("output %q", r.stdout)
		}
	})
	t.Run("process json", func(t *testing.T) {
		p := specs.Process{Args: []string{"sh", "-c", "echo $X; pwd"}, Env: []string{"X=from-json", "PATH=/bin:/usr/bin"}, Cwd: "/etc"}
		b, _ := json.Marshal(p)
		f := filepath.Join(t.TempDir(), "process.json")
		os.WriteFile(f, b, 0o644)
		r := h.must("exec", "--process", f, c)
		if r.stdout != "from-json\n/etc\n" {
			t.Errorf("output %q", r.stdout)
		}
	})
	t.Run("detach, pid file, namespaces and cgroup", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		// Its stdio is /dev/null: a pipe would be held open by the process.
		if err := h.cmd("exec", "--detach", "--pid-file", pidFile, c, "sleep", "1000").Run(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(string(b))
		defer unix.Kill(pid, unix.SIGKILL)
		for _, n := range []string{"pid", "net", "mnt", "uts", "ipc", "cgroup"} {
			want, _ := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/" + n)
			got, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
			if got != want {
				t.Errorf("%s namespace %s, init's %s", n, got, want)
			}
		}
		want, _ := os.ReadFile("/proc/" + strconv.Itoa(initPid) + "/cgroup")
		got, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if string(got) != string(want) {
			t.Errorf("cgroups:\n%s\ninit's:\n%s", got, want)
		}
		if !strings.Contains(h.must("ps", c).stdout, strconv.Itoa(pid)) {
			t.Errorf("exec'd pid %d not listed by ps", pid)
		}
	})
	// CVE-2024-21626 class: only stdio, and a cwd inside the container, even
	// when the caller has other fds open without close-on-exec.
	t.Run("no host fd or cwd", func(t *testing.T) {
		f, err := os.Open("/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := h.cmd("exec", c, "sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/cwd; ls /proc/$$/root/ | grep -c hostname-of-host || true")
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.Output()
		if err != nil || string(out) != "0\n1\n2\n/\n0\n" {
			t.Errorf("err %v: fds and cwd %q, want only 0 1 2 and /", err, out)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		sock, got := consoleListener(t)
		r := h.run("exec", "--tty", "--console-socket", sock, "--detach", c, "sh", "-c", "tty; echo done; sleep 1000")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var master *os.File
		select {
		case master = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no pty master received")
		}
		if master == nil {
			t.Fatal("console socket: no fd received")
		}
		defer master.Close()
		var out []byte
		buf := make([]byte, 1024)
		master.SetReadDeadline(time.Now().Add(10 * time.Second))
		for !strings.Contains(string(out), "done") {
			n, err := master.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !strings.Contains(string(out), "/dev/pts/") {
			t.Errorf("console output %q: want a /dev/pts tty", out)
		}
	})
	h.must("delete", "--force", c)
	t.Run("stopped container", func(t *testing.T) {
		c := id(t)
		h.create(h.bundle(nil, "true"), c).Close()
		h.must("start", c)
		h.waitStatus(c, specs.StateStopped)
		if r := h.run("exec", c, "true"); r.code == 0 {
			t.Errorf("exec in a stopped container succeeded")
		}
		if r := h.run("exec", "no-such-container", "true"); r.code == 0 {
			t.Errorf("exec in a missing container succeeded")
		}
	})
}

// consoleListener listens on a console socket and delivers the first pty
// master sent to it.
func consoleListener(t *testing.T) (string, <-chan *os.File) {
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, 4096)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
				got <- os.NewFile(uintptr(fds[0]), "pty-master")
				return
			}
		}
		got <- nil
	}()
	return sock, got
}

// TestExecUserNamespace: exec into a container with a user namespace joins
// it (berth-nsenter, the single-threaded helper): the process sees the
// container's mapping, is its root with the default capabilities, and runs
// in all of its namespaces (pid 1 is the container's init).
func TestExecUserNamespace(t *testing.T) {
	h := newHarness(t)
	c := id(t)
	h.create(userNSBundle(h, "sleep", "1000"), c)
	h.must("start", c)
	h.waitStatus(c, specs.StateRunning)
	r := h.run("exec", c, "sh", "-c", `cat /proc/self/uid_map | tr -s ' '; id -u; grep CapEff /proc/self/status
		for n in user mnt pid net ipc uts; do [ "$(readlink /proc/1/ns/$n)" = "$(readlink /proc/self/ns/$n)" ] && echo -n "$n "; done`)
	if r.code != 0 {
		t.Fatalf("exec: exit %d: %s", r.code, r.stderr)
	}
	if want := " 0 1000 1000\n0\nCapEff:\t0000000020000420\nuser mnt pid net ipc uts "; r.stdout != want {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
	h.must("delete", "--force", c)
}
