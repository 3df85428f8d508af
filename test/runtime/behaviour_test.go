package runtime_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/testutil"
)

func TestExitCode(t *testing.T) {
	h := newHarness(t)
	if r := h.runIn(nil, "exit 7"); r.code != 7 {
		t.Fatalf("exit code %d, want 7 (stderr %s)", r.code, r.stderr)
	}
	if r := h.runIn(nil, "true"); r.code != 0 {
		t.Fatalf("exit code %d, want 0 (stderr %s)", r.code, r.stderr)
	}
}

func TestIsolation(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) { s.Hostname = "berth-test" },
		`echo pid=$$; echo host=$(hostname); readlink /proc/self/cwd; ls /proc/self/ns/ >/dev/null`)
	for _, want := range []string{"pid=1\n", "host=berth-test\n", "/\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Namespaces differ from the host's.
	out = h.mustIn(nil, `for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done`)
	for _, n := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		host, _ := os.Readlink("/proc/self/ns/" + n)
		if strings.Contains(out, host+"\n") {
			t.Errorf("container shares the host %s namespace %s", n, host)
		}
	}
}

func TestCapabilitiesDefault(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(nil, `cat /proc/self/status`)
	// AUDIT_WRITE(29) KILL(5) NET_BIND_SERVICE(10). The default spec's
	// ambient set cannot be raised (the kernel wants ambient ⊆ inheritable,
	// and inheritable is empty), so CapAmb stays 0, as with runc.
	const want = "0000000020000420"
	if got := field(t, out, "CapAmb"); got != "0000000000000000" {
		t.Errorf("CapAmb = %s, want 0 (ambient without inheritable)", got)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got := field(t, out, k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if got := field(t, out, "CapInh"); got != "0000000000000000" {
		t.Errorf("CapInh = %s", got)
	}
	if got := field(t, out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", got)
	}
}

func TestCapabilitiesCustom(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		c := []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c[:1], Permitted: c, Inheritable: c[1:]}
	}, `cat /proc/self/status`)
	// uid 0 execs a file without file capabilities: the kernel gives it
	// permitted = effective = inheritable | bounding, whatever the spec's
	// effective set said (execve(2) semantics, the same under runc).
	want := map[string]string{
		"CapBnd": "0000000000200001", "CapPrm": "0000000000200001", "CapEff": "0000000000200001",
		"CapInh": "0000000000200000", "CapAmb": "0000000000000000", "NoNewPrivs": "0",
	}
	for k, v := range want {
		if got := field(t, out, k); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
}

func TestUser(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}}
		u := uint32(0o077)
		s.Process.User.Umask = &u
	}, `cat /proc/self/status; echo umask=$(umask)`)
	if got := field(t, out, "Uid"); got != "1000\t1000\t1000\t1000" {
		t.Errorf("Uid = %q", got)
	}
	if got := field(t, out, "Gid"); got != "1001\t1001\t1001\t1001" {
		t.Errorf("Gid = %q", got)
	}
	if got := field(t, out, "Groups"); got != "10 20" {
		t.Errorf("Groups = %q", got)
	}
	if !strings.Contains(out, "umask=0077") {
		t.Errorf("umask: %s", out)
	}
	// A non-root user keeps only ambient capabilities over execve, and the
	// default spec's ambient set cannot be raised (inheritable is empty).
	if got := field(t, out, "CapEff"); got != "0000000000000000" {
		t.Errorf("CapEff = %s", got)
	}
}

func TestEnvCwd(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Process.Cwd = "/tmp/work"
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
	}, `pwd; echo "$FOO"`)
	if out != "/tmp/work\nbar baz\n" {
		t.Errorf("got %q", out)
	}
}

func TestRlimits(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1000}, {Type: "RLIMIT_NPROC", Soft: 77, Hard: 77}}
	}, `ulimit -n; ulimit -Hn; ulimit -u`)
	if out != "512\n1000\n77\n" {
		t.Errorf("got %q", out)
	}
}

// TestRlimitAboveHardLimit: without CAP_SYS_RESOURCE (this machine) a hard
// limit above the host's cannot be set; berth must say which limit.
func TestRlimitAboveHardLimit(t *testing.T) {
	h := newHarness(t)
	var cur [2]uint64
	b, _ := os.ReadFile("/proc/self/limits")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(l)
			cur[0], _ = strconv.ParseUint(f[3], 10, 64)
			cur[1], _ = strconv.ParseUint(f[4], 10, 64)
		}
	}
	r := h.runIn(func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur[1] * 4, Hard: cur[1] * 4}}
	}, `ulimit -Hn`)
	if r.code == 0 {
		if strings.TrimSpace(r.stdout) == strconv.FormatUint(cur[1]*4, 10) {
			t.Skip("this host lets root raise hard limits (CAP_SYS_RESOURCE)")
		}
		t.Fatalf("raised hard limit silently ignored: %q", r.stdout)
	}
	if !h.rt.isRunc && !strings.Contains(r.stderr, "RLIMIT_NOFILE") {
		t.Errorf("error does not name the limit: %s", r.stderr)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) { v := 500; s.Process.OOMScoreAdj = &v }, `cat /proc/self/oom_score_adj`)
	if out != "500\n" {
		t.Errorf("got %q", out)
	}
}

func TestMounts(t *testing.T) {
	h := newHarness(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("from host\n"), 0o644)
	out := h.mustIn(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}},
			specs.Mount{Destination: "/ro", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/rw/deep/dir", Type: "bind", Source: host, Options: []string{"bind"}},
		)
	}, `cat /ro/hello; touch /ro/x 2>/dev/null && echo ro-writable; touch /rw/deep/dir/made && echo rw-ok;
	    touch /data/x && echo tmpfs-ok; grep ' /data ' /proc/mounts | cut -d' ' -f3`)
	want := "from host\nrw-ok\ntmpfs-ok\ntmpfs\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(host, "made")); err != nil {
		t.Errorf("rw bind mount did not write through: %v", err)
	}
}

func TestReadonlyRoot(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(nil, `touch /newfile 2>/dev/null && echo writable; echo done`)
	if out != "done\n" {
		t.Errorf("root.readonly: got %q", out)
	}
	out = h.mustIn(func(s *specs.Spec) { s.Root.Readonly = false }, `touch /newfile && echo writable`)
	if out != "writable\n" {
		t.Errorf("root.readonly false: got %q", out)
	}
}

func TestDevices(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(nil, `for d in null zero full random urandom tty; do test -c /dev/$d && echo $d; done
		echo x > /dev/null && echo write-null
		head -c 3 /dev/zero | od -An -tx1
		readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; readlink /dev/stdout; readlink /dev/stderr`)
	want := "null\nzero\nfull\nrandom\nurandom\ntty\nwrite-null\n 00 00 00\npts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestSpecDevices(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		mode := os.FileMode(0o620)
		uid, gid := uint32(0), uint32(0)
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid})
	}, `ls -l /dev/mydev | cut -c1-10`)
	if out != "crw--w----\n" {
		t.Errorf("got %q", out)
	}
}

func TestSysctl(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmni": "1000"}
	}, `cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni`)
	if out != "1\n1000\n" {
		t.Errorf("got %q", out)
	}
}

// TestMaskedAndReadonlyPaths: /proc and /sys masking holds (the default
// spec's maskedPaths and readonlyPaths).
func TestMaskedAndReadonlyPaths(t *testing.T) {
	h := newHarness(t)
	// /proc/keys and /proc/timer_list (files), /proc/acpi and /sys/firmware
	// (directories) exist on this machine's kernel; kcore does not.
	out := h.mustIn(nil, `cat /proc/keys /proc/timer_list | wc -c; ls /proc/acpi | wc -l; ls /sys/firmware | wc -l;
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable;
		echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable;
		grep -E ' /proc/(sys|bus|fs|irq) ' /proc/self/mountinfo | grep -c ' ro,'`)
	if out != "0\n0\n0\n4\n" {
		t.Errorf("got %q, want %q", out, "0\n0\n0\n4\n")
	}
}

func TestConsoleSizeAndTTYAbsent(t *testing.T) {
	h := newHarness(t)
	// Without a terminal, stdin/out/err are what the runtime was given.
	out := h.mustIn(nil, `tty >/dev/null && echo tty || echo notty`)
	if out != "notty\n" {
		t.Errorf("got %q", out)
	}
}

func TestCgroupLimits(t *testing.T) {
	h := newHarness(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("needs the cgroup v1 pids hierarchy of this machine")
	}
	cg := "/berth-runtime-test/" + id(t)
	out := h.mustIn(func(s *specs.Spec) {
		s.Linux.CgroupsPath = cg
		// Without a cgroup namespace /proc/self/cgroup shows the host path.
		var keep []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.CgroupNamespace {
				keep = append(keep, ns)
			}
		}
		s.Linux.Namespaces = keep
		lim, mem := int64(33), int64(64<<20)
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}, Memory: &specs.LinuxMemory{Limit: &mem},
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	}, `cat /proc/self/cgroup | grep -E ':(pids|memory):' | cut -d: -f2-; echo x > /dev/null && echo null-ok`)
	for _, want := range []string{"pids:" + cg + "\n", "memory:" + cg + "\n", "null-ok\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []string{"pids", "memory", "cpu", "devices"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, cg)); err == nil {
			t.Errorf("cgroup %s%s left behind after run", c, cg)
		}
	}
	testutil.RemoveCgroupParent("berth-runtime-test")
}

func TestBadSpecs(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		args   []string
		want   string // berth's message must contain this
	}{
		{"empty args", nil, nil, "process.args"},
		{"not found", nil, []string{"nope"}, `executable file not found in $PATH`},
		{"bad namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "foo"})
		}, []string{"true"}, "linux.namespaces"},
		{"no rootfs", func(s *specs.Spec) { s.Root.Path = "/nonexistent-rootfs" }, []string{"true"}, "root.path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.bundle(tt.mutate, tt.args...)
			r := h.run("run", "--bundle", b, id(t))
			if r.code == 0 {
				t.Fatalf("bad spec ran: %s", r.stdout)
			}
			if !h.rt.isRunc && !strings.Contains(r.stderr, tt.want) {
				t.Errorf("error %q does not contain %q", r.stderr, tt.want)
			}
		})
	}
}
