package runtime_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestHostBinaryNotWritable is the CVE-2019-5736 class: a container process
// that got hold of its init's /proc/<pid>/exe (the runtime binary, while
// the init waits in `created`) must not be able to write the host binary
// through it once the runtime has exec'd away.
func TestHostBinaryNotWritable(t *testing.T) {
	h := newHarness(t)
	c := id(t)
	h.create(h.bundle(nil, "sleep", "1000"), c)
	pid := h.state(c).Pid
	// The binary the init runs: the runtime itself, or berth's embedded
	// static init, installed under the state root. Both must hold.
	binaries := []string{h.rt.binary}
	installed, _ := filepath.Glob(filepath.Join(h.root, "@init", "berth-init-*"))
	binaries = append(binaries, installed...)
	t.Logf("init binaries: %v", binaries)
	before := hashFiles(t, binaries)
	// What a process in the container could do: an O_PATH handle on the
	// init's exe...
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// ...kept across start, when the init execs the user process and no
	// runtime process runs the binary any more (no ETXTBSY to hide behind)...
	h.must("start", c)
	h.waitStatus(c, specs.StateRunning)
	// ...then reopened for writing.
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		_, werr := unix.Pwrite(w, []byte("PWNED"), 0)
		unix.Close(w)
		if werr == nil && hashFiles(t, binaries) != before {
			t.Fatal("the host runtime binary was overwritten through the init's /proc/pid/exe")
		}
		t.Logf("reopen for write succeeded but did not reach the host binary (a copy)")
	} else {
		t.Logf("reopen for write refused: %v", err)
	}
	if hashFiles(t, binaries) != before {
		t.Fatal("host binary changed")
	}
	h.must("delete", "--force", c)
}

func hashFiles(t *testing.T, paths []string) string {
	t.Helper()
	var sums []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("%x", sha256.Sum256(b)))
	}
	return strings.Join(sums, " ")
}

// TestNoHostFDOrCwdLeak is the CVE-2024-21626 class: the container gets
// only its stdio, and a cwd inside its root.
func TestNoHostFDOrCwdLeak(t *testing.T) {
	h := newHarness(t)
	// An fd of the caller that is not close-on-exec must not reach the
	// container either (the runtime passes only what --preserve-fds says).
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// ls's own directory fd is 3.
	out := h.mustIn(nil, `ls /proc/self/fd; readlink /proc/$$/cwd; readlink /proc/1/cwd`)
	if out != "0\n1\n2\n3\n/\n/\n" {
		t.Errorf("container fds/cwd: %q, want only 0 1 2 (3: ls's own) and cwd /", out)
	}
	// The init of a created container holds no host directory either.
	c := id(t)
	h.create(h.bundle(nil, "true"), c)
	pid := strconv.Itoa(h.state(c).Pid)
	if cwd, _ := os.Readlink("/proc/" + pid + "/cwd"); cwd != "/" && !strings.HasSuffix(cwd, "/rootfs") {
		t.Errorf("created init's cwd is %q", cwd)
	}
	ents, _ := os.ReadDir("/proc/" + pid + "/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/" + pid + "/fd/" + e.Name())
		n, _ := strconv.Atoi(e.Name())
		if n > 2 && (strings.HasPrefix(target, "/sys/fs/cgroup") || target == "/" || strings.HasPrefix(target, "/etc")) {
			t.Errorf("created init holds host fd %s -> %s", e.Name(), target)
		}
	}
	h.must("delete", "--force", c)
}

// TestMountTargetSymlinkStaysInRootfs is the CVE-2021-30465 class: a mount
// destination through symlinks in the rootfs pointing at / or above it
// lands inside the rootfs; the host is untouched.
func TestMountTargetSymlinkStaysInRootfs(t *testing.T) {
	h := newHarness(t)
	name := fmt.Sprintf("berth-escape-%d", os.Getpid())
	hostPaths := []string{filepath.Join("/", name), filepath.Join("/tmp", name)}
	for _, p := range hostPaths {
		os.RemoveAll(p)
	}
	b := h.bundle(func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/evil-root/" + name, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			specs.Mount{Destination: "/evil-up/" + name, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
		)
	}, "sh", "-c", "grep -c "+name+" /proc/mounts")
	rootfs := filepath.Join(b, "rootfs")
	if err := os.Symlink("/", filepath.Join(rootfs, "evil-root")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../tmp", filepath.Join(rootfs, "evil-up")); err != nil {
		t.Fatal(err)
	}
	r := h.run("run", "--bundle", b, id(t))
	for _, p := range hostPaths {
		if _, err := os.Stat(p); err == nil {
			os.RemoveAll(p)
			t.Errorf("mount target escaped the rootfs: %s exists on the host", p)
		}
	}
	if r.code != 0 {
		t.Logf("runtime refused the spec (acceptable): %s", r.stderr)
		return
	}
	if r.stdout != "2\n" {
		t.Errorf("mounts inside the container: %q, want 2", r.stdout)
	}
	for _, p := range []string{filepath.Join(rootfs, name), filepath.Join(rootfs, "tmp", name)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("mount point not created inside the rootfs: %v", err)
		}
	}
	b2, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(b2, []byte(name)) {
		t.Error("a mount leaked into the host mount namespace")
	}
}

// TestMaskingHolds: the container's root (default capabilities, no
// CAP_SYS_ADMIN) cannot undo the masking: it can neither unmount a masked
// path, nor remount a read-only one writable, nor mount a fresh procfs or
// sysfs beside them to read the unmasked files.
func TestMaskingHolds(t *testing.T) {
	h := newHarness(t)
	out := h.mustIn(func(s *specs.Spec) { s.Root.Readonly = false }, `
		umount /proc/keys 2>/dev/null && echo unmounted-keys
		umount -l /proc/timer_list 2>/dev/null && echo unmounted-timer_list
		umount /sys/firmware 2>/dev/null && echo unmounted-firmware
		mount -o remount,rw /proc/sys 2>/dev/null && echo remounted-proc-sys
		mount -o remount,rw /sys 2>/dev/null && echo remounted-sys
		mkdir -p /mnt/p /mnt/s
		mount -t proc proc /mnt/p 2>/dev/null && echo mounted-proc
		mount -t sysfs sysfs /mnt/s 2>/dev/null && echo mounted-sysfs
		cat /proc/keys /proc/timer_list | wc -c
		ls /sys/firmware | wc -l
		echo x > /proc/sys/kernel/domainname 2>/dev/null && echo wrote-proc-sys
		echo done`)
	if out != "0\n0\ndone\n" {
		t.Errorf("masking undone from inside the container:\n%s", out)
	}
}
