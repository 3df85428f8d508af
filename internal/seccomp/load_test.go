package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/testutil"
)

// The loading tests never load a filter into the test process: they
// re-exec the test binary, which (in TestMain) locks its thread, sets
// no_new_privs, loads the profile, runs the requested syscalls on that
// thread and prints one result per line, then optionally execs a program.
const (
	envChild   = "BERTH_SECCOMP_TEST_CHILD" // path of the profile JSON
	envOps     = "BERTH_SECCOMP_TEST_OPS"   // ';'-separated operations
	envExec    = "BERTH_SECCOMP_TEST_EXEC"  // JSON argv to exec afterwards
	childUsage = 111
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envChild); path != "" {
		child(path)
	}
	os.Exit(m.Run())
}

func child(path string) {
	runtime.LockOSThread()
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(childUsage)
	}
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(childUsage)
	}
	var argv []string
	if s := os.Getenv(envExec); s != "" {
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(childUsage)
		}
	}
	var ops []string
	if s := os.Getenv(envOps); s != "" {
		ops = strings.Split(s, ";")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "no_new_privs:", err)
		os.Exit(childUsage)
	}
	if err := Load(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(childUsage)
	}
	var out strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&out, "%s=%s\n", op, do(op))
	}
	os.Stdout.WriteString(out.String())
	if argv != nil {
		err := unix.Exec(argv[0], argv, os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(childUsage)
	}
	os.Exit(0)
}

// do performs one operation, written name[:arg,arg...], on the calling
// (filtered) thread and returns "ok" or the errno's name.
func do(op string) string {
	name, arg, _ := strings.Cut(op, ":")
	var args []uintptr
	if arg != "" {
		for _, a := range strings.Split(arg, ",") {
			if n, err := strconv.ParseUint(a, 0, 64); err == nil {
				args = append(args, uintptr(n))
			}
		}
	}
	for len(args) < 3 {
		args = append(args, 0)
	}
	var err error
	switch name {
	case "mkdir":
		err = unix.Mkdir(arg, 0o755)
		os.Remove(arg)
	case "uname":
		var u unix.Utsname
		err = unix.Uname(&u)
	case "getpid":
		_, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		err = errnoErr(e)
	case "personality":
		_, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, args[0], 0, 0)
		err = errnoErr(e)
	case "getpriority":
		_, _, e := unix.RawSyscall(unix.SYS_GETPRIORITY, args[0], args[1], 0)
		err = errnoErr(e)
	case "setpriority":
		_, _, e := unix.RawSyscall(unix.SYS_SETPRIORITY, args[0], args[1], args[2])
		err = errnoErr(e)
	case "keyctl":
		// KEYCTL_GET_KEYRING_ID of the thread keyring, without creating it.
		_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xffffffff), 0) // -1
		err = errnoErr(e)
	case "keyctl-x32":
		// The same call through the x32 ABI (syscall number | 0x40000000),
		// the classic way around a filter that checks only x86_64 numbers.
		_, _, e := unix.RawSyscall(0x40000000|unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xffffffff), 0)
		err = errnoErr(e)
	case "nr":
		// A bare syscall number, no arguments.
		_, _, e := unix.RawSyscall(args[0], 0, 0, 0)
		err = errnoErr(e)
	case "unshare":
		err = unix.Unshare(unix.CLONE_NEWUTS)
	default:
		return "unknown-op"
	}
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// runChild loads cfg in a re-exec'd child, performs ops there and returns
// each op's result, and the output of argv if given.
func runChild(t *testing.T, cfg *specs.LinuxSeccomp, ops []string, argv ...string) (map[string]string, string) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+path, envOps+"="+strings.Join(ops, ";"))
	if argv != nil {
		a, _ := json.Marshal(argv)
		cmd.Env = append(cmd.Env, envExec+"="+string(a))
	}
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	res := map[string]string{}
	lines := strings.Split(string(out), "\n")
	for i, op := range ops {
		if i >= len(lines) {
			t.Fatalf("child printed %d results for %d ops: %q", len(lines), len(ops), out)
		}
		k, v, _ := strings.Cut(lines[i], "=")
		if k != op {
			t.Fatalf("result %d is for %q, want %q", i, k, op)
		}
		res[op] = v
	}
	return res, strings.Join(lines[len(ops):], "\n")
}

func TestLoadBlocksWithChosenErrno(t *testing.T) {
	dir := t.TempDir()
	mk := filepath.Join(dir, "d")
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))},
			{Names: []string{"uname"}, Action: specs.ActErrno}, // EPERM by default
			// MASKED_EQ: personality(p) fails when (p & 0xffff0000) == 0x20000.
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xffff0000, ValueTwo: 0x20000}}},
			// One argument twice: ORed (getpriority(PRIO_PGRP|PRIO_USER, ...)).
			{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTTY)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 0, Op: specs.OpEqualTo, Value: 2}}},
			// Two arguments: ANDed (setpriority(PRIO_PROCESS, _, 19)).
			{Names: []string{"setpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOTTY)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}, {Index: 2, Op: specs.OpGreaterEqual, Value: 19}}},
			// A syscall this libseccomp does not know is skipped.
			{Names: []string{"berth_no_such_syscall"}, Action: specs.ActErrno},
		},
	}
	ops := []string{
		"getpid",
		"mkdir:" + mk,
		"uname",
		"personality:0x20000",
		"personality:0xffffffff",
		"getpriority:0,0",
		"getpriority:1,0",
		"getpriority:2,0",
		"setpriority:0,0,19",
		"setpriority:0,0,18",
	}
	got, _ := runChild(t, cfg, ops)
	want := map[string]string{
		"getpid":                 "ok",
		"mkdir:" + mk:            "EXDEV",
		"uname":                  "EPERM",
		"personality:0x20000":    "EACCES",
		"personality:0xffffffff": "ok",
		"getpriority:0,0":        "ok",
		"getpriority:1,0":        "ENOTTY",
		"getpriority:2,0":        "ENOTTY",
		"setpriority:0,0,19":     "ENOTTY",
		"setpriority:0,0,18":     "ok",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestLoadDefaultErrno(t *testing.T) {
	// An allowlist: everything not listed fails with defaultErrnoRet. The
	// list holds what the Go runtime and the child's reporting need.
	allowed := []string{"write", "exit_group", "exit", "futex", "getpid", "rt_sigreturn", "rt_sigprocmask",
		"rt_sigaction", "sigaltstack", "mmap", "munmap", "madvise", "nanosleep", "clock_gettime", "sched_yield",
		"tgkill", "gettid", "epoll_pwait", "epoll_wait", "getrandom", "clone", "mprotect", "fcntl"}
	cfg := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(unix.ENOSYS)),
		Syscalls:        []specs.LinuxSyscall{{Names: allowed, Action: specs.ActAllow}},
	}
	got, _ := runChild(t, cfg, []string{"getpid", "uname"})
	want := map[string]string{"getpid": "ok", "uname": "ENOSYS"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// dockerDefault is Docker's default profile as Docker computes it for a
// container with Docker's default capabilities.
func dockerDefault(t testing.TB) *specs.LinuxSeccomp {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	cfg, err := profiles.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDockerDefaultProfile(t *testing.T) {
	testutil.RequireFile(t, "/bin/busybox", "busybox-static")
	cfg := dockerDefault(t)
	if err := Validate(cfg); err != nil {
		t.Fatalf("Docker's default profile does not validate: %v", err)
	}
	t.Logf("libseccomp %s skips %d syscalls of Docker's default profile: %v", Version(), len(Skipped(cfg)), Skipped(cfg))
	got, out := runChild(t, cfg, []string{"getpid", "uname", "keyctl", "keyctl-x32", "unshare", "personality:0xffffffff", "personality:0x40000",
		"nr:457", "nr:999", "nr:0x400003e7"}, // statmount (newer than libseccomp 2.5.4), none, none on x32
		"/bin/busybox", "sh", "-c", "echo ok")
	want := map[string]string{
		"getpid":                 "ok",
		"uname":                  "ok",
		"keyctl":                 "EPERM",
		"keyctl-x32":             "EPERM",
		"unshare":                "EPERM",
		"personality:0xffffffff": "ok",
		"personality:0x40000":    "EPERM", // ADDR_NO_RANDOMIZE
		// Syscalls newer than the profile get ENOSYS, so programs fall
		// back to older ones, as under runc.
		"nr:457":        "ENOSYS",
		"nr:999":        "ENOSYS",
		"nr:0x400003e7": "ENOSYS",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if strings.TrimSpace(out) != "ok" {
		t.Errorf("busybox sh -c 'echo ok' under Docker's profile printed %q", out)
	}
}

// BenchmarkDockerDefault measures what every container start pays for
// seccomp: validating Docker's default profile and generating its BPF
// (libseccomp generates the program in seccomp_load; Export does the same
// work without loading it into this process).
func BenchmarkDockerDefault(b *testing.B) {
	cfg := dockerDefault(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Export(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDockerDefaultBuild is the libseccomp rule building alone,
// without BPF generation.
func BenchmarkDockerDefaultBuild(b *testing.B) {
	cfg := dockerDefault(b)
	b.ResetTimer()
	for b.Loop() {
		p, err := NewPlan(cfg)
		if err != nil {
			b.Fatal(err)
		}
		f, err := build(p)
		if err != nil {
			b.Fatal(err)
		}
		f.Release()
	}
}

// BenchmarkDockerDefaultCompileCached is what a container start pays in
// the daemon once the profile has been compiled before.
func BenchmarkDockerDefaultCompileCached(b *testing.B) {
	cfg := dockerDefault(b)
	if _, err := Compile(cfg); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDockerDefaultDiskCache is a fresh process's start with the
// profile in CompileCached's directory (memory cache empty).
func BenchmarkDockerDefaultDiskCache(b *testing.B) {
	cfg := dockerDefault(b)
	dir := b.TempDir()
	if _, err := CompileCached(cfg, dir); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		clearMemoryCache()
		if _, err := CompileCached(cfg, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadDefault measures what a container's init pays for
// seccomp(2) with Docker's default profile (the kernel checks the program
// and runs it once per syscall number to build its cache). Each load goes
// into a thread of its own, locked and left to end with its goroutine, so
// the benchmark's other threads stay unfiltered.
func BenchmarkLoadDefault(b *testing.B) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
	cfg, err := profiles.GetDefaultProfile(s)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error)
	b.ResetTimer()
	for range b.N {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with its filter
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				errc <- err
				return
			}
			errc <- p.Load()
		}()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.Filter)/8), "insns")
}
