package runtime_test

// Regression tests for what the OCI runtime-tools suite found (see
// docs/design/runtime.md, "Conformance"), each passing against runc too.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/mountinfo"
)

// hostHasCap says whether this process's bounding set holds capability c.
func hostHasCap(t *testing.T, c uint) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(field(t, string(b), "CapBnd"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v&(1<<c) != 0
}

const capSysResource = 24

// TestSeccompUnderRlimitAS: a seccomp profile and a 1 GiB RLIMIT_AS
// together (runtime-tools' default config plus process_rlimits). Compiling
// the filter inside the init after the rlimits were set failed with ENOMEM;
// the filter is compiled by the parent and only loaded by the init.
func TestSeccompUnderRlimitAS(t *testing.T) {
	h := newHarness(t)
	const gib = 1 << 30
	out := h.mustIn(func(s *specs.Spec) {
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Soft: gib, Hard: 2 * gib})
		errno := uint(1) // EPERM
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
		}
	}, `ulimit -v; mkdir /tmp/x 2>/dev/null && echo mkdir-allowed; echo done`)
	if out != "1048576\ndone\n" {
		t.Errorf("got %q, want the 1 GiB limit (in KiB) and mkdir denied", out)
	}
}

// TestNoMountNamespace: a spec without a mount namespace runs in the host's
// (runc allows it; runtime-tools' linux_ns_itype needs it). berth never
// changes the host's root propagation, chroots instead of pivot_root, and
// delete unmounts what the container mounted under its rootfs.
func TestNoMountNamespace(t *testing.T) {
	h := newHarness(t)
	var rootfs string
	b := h.bundle(func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.MountNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		s.Root.Readonly = false
		// runc refuses to mask without a mount namespace of the container's.
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}, "sh", "-c", `readlink /proc/self/ns/mnt; ls /bin/busybox`)
	rootfs = filepath.Join(b, "rootfs")
	// Registered after the bundle's TempDir: runs before its removal, so a
	// runtime that leaves proc/sys mounted there (runc) does not get the
	// host's /proc walked by RemoveAll.
	t.Cleanup(func() {
		unmountBelow(rootfs)
		if h.rt.isRunc {
			unix.Unmount(rootfs, unix.MNT_DETACH) // runc binds the rootfs on itself, in the host's tree
		}
	})
	r := h.run("run", "--bundle", b, id(t))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	host, _ := os.Readlink("/proc/self/ns/mnt")
	if want := host + "\n/bin/busybox\n"; r.stdout != want {
		t.Errorf("got %q, want %q (the host's mount namespace, chroot'ed in the rootfs)", r.stdout, want)
	}
	if left := mountsBelow(rootfs); len(left) > 0 && !h.rt.isRunc {
		t.Errorf("mounts left in the host's namespace after delete: %v", left)
	}
}

func mountsBelow(dir string) []string {
	out, _ := mountinfo.Under(dir, false)
	return out
}

func unmountBelow(dir string) {
	for _, mp := range mountsBelow(dir) { // deepest first
		unix.Unmount(mp, unix.MNT_DETACH)
	}
}

// TestHostnameInJoinedUTSNamespace: hostname is allowed when the uts
// namespace is joined by path (runtime-tools' linux_ns_path).
func TestHostnameInJoinedUTSNamespace(t *testing.T) {
	h := newHarness(t)
	holder := id(t)
	h.create(h.bundle(nil, "sleep", "100"), holder)
	pid := h.state(holder).Pid
	out := h.mustIn(func(s *specs.Spec) {
		s.Hostname = "joined"
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.UTSNamespace {
				s.Linux.Namespaces[i].Path = "/proc/" + strconv.Itoa(pid) + "/ns/uts"
			}
		}
	}, `hostname; readlink /proc/self/ns/uts`)
	want, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/uts")
	if out != "joined\n"+want+"\n" {
		t.Errorf("got %q, want hostname joined in %s", out, want)
	}
	h.must("delete", "--force", holder)
}

// TestCapabilityTheHostLacks: asking for a capability outside the
// runtime's bounding set fails, and berth names it (runc: a bare EPERM).
func TestCapabilityTheHostLacks(t *testing.T) {
	if hostHasCap(t, capSysResource) {
		t.Skip("this host has CAP_SYS_RESOURCE")
	}
	h := newHarness(t)
	r := h.runIn(func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_SYS_RESOURCE")
		c.Permitted = append(c.Permitted, "CAP_SYS_RESOURCE")
		c.Effective = append(c.Effective, "CAP_SYS_RESOURCE")
	}, `true`)
	if r.code == 0 {
		t.Fatal("a capability the host lacks was silently dropped")
	}
	if !h.rt.isRunc && !strings.Contains(r.stderr, "CAP_SYS_RESOURCE") {
		t.Errorf("error does not name the capability: %s", r.stderr)
	}
}

// TestOOMScoreAdjBelowCurrent: lowering oom_score_adj needs
// CAP_SYS_RESOURCE; without it berth names the field, never a bare EPERM.
func TestOOMScoreAdjBelowCurrent(t *testing.T) {
	if hostHasCap(t, capSysResource) {
		t.Skip("this host has CAP_SYS_RESOURCE")
	}
	h := newHarness(t)
	r := h.runIn(func(s *specs.Spec) { v := -500; s.Process.OOMScoreAdj = &v }, `cat /proc/self/oom_score_adj`)
	if r.code == 0 {
		if strings.TrimSpace(r.stdout) != "-500" {
			t.Fatalf("oom_score_adj -500 silently ignored: %q", r.stdout)
		}
		return // the runtime's own score was already that low
	}
	if !h.rt.isRunc && !strings.Contains(r.stderr, "oomScoreAdj") {
		t.Errorf("error does not name process.oomScoreAdj: %s", r.stderr)
	}
}

// TestUserNamespaceMappedRoot: with a user namespace whose root is not the
// host's root (0 -> 1000), the init must become the namespace's root
// before exec, or it loses every capability and cannot even mount
// (runtime-tools' linux_uid_mappings and linux_ns_nopath).
func TestUserNamespaceMappedRoot(t *testing.T) {
	h := newHarness(t)
	b := userNSBundle(h, "sh", "-c", `cat /proc/self/uid_map | tr -s ' '; id -u; grep CapEff /proc/self/status`)
	r := h.run("run", "--bundle", b, id(t))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if want := " 0 1000 1000\n0\nCapEff:\t0000000020000420\n"; r.stdout != want {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
}

// TestCgroupMountWithoutCgroupNamespace: without a cgroup namespace the
// container's /sys/fs/cgroup shows its own cgroup (bound from the host, as
// runc does), not the host's whole tree (dockerd 20.10 runs containers so on
// cgroup v1).
func TestCgroupMountWithoutCgroupNamespace(t *testing.T) {
	h := newHarness(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("no cgroup v1 pids hierarchy")
	}
	out := h.mustIn(func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		limit := int64(42)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	}, `cat /sys/fs/cgroup/pids/pids.max; touch /sys/fs/cgroup/pids/x 2>/dev/null && echo writable; echo done`)
	if out != "42\ndone\n" {
		t.Errorf("got %q, want the container's own pids.max, read-only", out)
	}
}

// TestDeleteForceMissing: `delete --force` of a container that does not
// exist succeeds, as with runc (containerd-shim's cleanup after a shim
// death calls it and logs an error otherwise); without --force it fails.
func TestDeleteForceMissing(t *testing.T) {
	h := newHarness(t)
	if r := h.run("delete", "--force", "nosuch"); r.code != 0 {
		t.Errorf("delete --force of a missing container: exit %d: %s", r.code, r.stderr)
	}
	if r := h.run("delete", "nosuch"); r.code == 0 {
		t.Error("delete of a missing container succeeded")
	}
}

// TestNoCgroupLeft: the container's cgroup is gone after `run`, and after
// a create that failed while joining a namespace (runtime-tools'
// linux_ns_path_type). berth's forking thread joins the cgroup before the
// fork; if that thread (possibly Go's main thread, which cannot end) stayed
// there, the cgroup could never be removed and the failed create hung.
func TestNoCgroupLeft(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("no cgroup v1 pids hierarchy")
	}
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		cg := "/berth-test/" + id(t)
		r := h.runIn(func(s *specs.Spec) { s.Linux.CgroupsPath = cg }, `true`)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if _, err := os.Stat("/sys/fs/cgroup/pids" + cg); err == nil {
			t.Fatalf("run %d: cgroup %s left behind", i, cg)
		}
	}
	cg := "/berth-test/" + id(t)
	b := h.bundle(func(s *specs.Spec) {
		s.Linux.CgroupsPath = cg
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.MountNamespace {
				s.Linux.Namespaces[i].Path = "/proc/self/ns/net" // the wrong type
			}
		}
	}, "true")
	if r := h.run("create", "--bundle", b, id(t)); r.code == 0 {
		t.Fatal("create joined a network namespace as the mount namespace")
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids" + cg); err == nil {
		t.Errorf("failed create left cgroup %s", cg)
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-test")
	for _, d := range dirs {
		os.Remove(d) // the parent the runtimes created, empty now
	}
}

// TestDeleteCreatedNeedsForce: deleting a container that is not stopped is
// an error with no effect (runtime-spec; runtime-tools' delete). runc kills
// a created container instead, so this is berth's behaviour only.
func TestDeleteCreatedNeedsForce(t *testing.T) {
	h := newHarness(t)
	if h.rt.isRunc {
		t.Skip("runc deletes a created container without --force")
	}
	c := id(t)
	h.create(h.bundle(nil, "true"), c)
	if r := h.run("delete", c); r.code == 0 {
		t.Fatal("delete of a created container succeeded without --force")
	}
	if st := h.state(c); st.Status != specs.StateCreated {
		t.Errorf("after the refused delete: status %q, want created", st.Status)
	}
	h.must("delete", "--force", c)
}

// userNSBundle is a bundle with a user namespace mapping container ids
// 0-999 to the host's 1000-1999, running args.
func userNSBundle(h *harness, args ...string) string {
	b := h.bundle(func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1000}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1000}}
		// A v1 cgroup hierarchy cannot be mounted from a user namespace.
		var ms []specs.Mount
		for _, m := range s.Mounts {
			if m.Type != "cgroup" {
				ms = append(ms, m)
			}
		}
		s.Mounts = ms
	}, args...)
	// The host's uid 1000 must reach the rootfs: open the path to it.
	for d := b; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	return b
}
