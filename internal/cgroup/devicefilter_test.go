package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

// runDeviceFilter interprets the device program for one access, with just
// the instructions DeviceFilter emits, so the program's logic is tested
// without root or a cgroup v2 host.
func runDeviceFilter(t *testing.T, prog []ebpfInsn, typ, access, major, minor uint32) uint64 {
	t.Helper()
	ctx := [3]uint32{access<<16 | typ, major, minor}
	var r [11]uint64
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		imm := uint64(int64(in.Imm))
		switch in.Code {
		case opLdxW:
			if in.Src != 1 || in.Off%4 != 0 || in.Off < 0 || in.Off > 8 {
				t.Fatalf("pc %d: load outside the context", pc)
			}
			r[in.Dst] = uint64(ctx[in.Off/4])
		case opAnd64K:
			r[in.Dst] &= imm
		case opRsh64K:
			r[in.Dst] >>= imm
		case opMov64K:
			r[in.Dst] = imm
		case opMov64X:
			r[in.Dst] = r[in.Src]
		case opJneK:
			if r[in.Dst] != imm {
				pc += int(in.Off)
			}
		case opJeqK:
			if r[in.Dst] == imm {
				pc += int(in.Off)
			}
		case opExit:
			return r[0]
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}

func TestDeviceFilterLogic(t *testing.T) {
	const (
		blk = unix.BPF_DEVCG_DEV_BLOCK
		chr = unix.BPF_DEVCG_DEV_CHAR
		m   = unix.BPF_DEVCG_ACC_MKNOD
		r   = unix.BPF_DEVCG_ACC_READ
		w   = unix.BPF_DEVCG_ACC_WRITE
	)
	// Docker's shape: deny everything, then allow a list.
	docker := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},   // null
		{Allow: true, Type: "c", Major: i64(136), Minor: i64(-1), Access: "rw"}, // pts/*
		{Allow: true, Type: "b", Major: i64(8), Minor: i64(0), Access: "r"},     // sda read-only
		{Allow: true, Type: "c", Minor: i64(7), Access: "m"},                    // mknod c *:7
	}
	type access struct {
		typ, acc, major, minor uint32
		want                   uint64
	}
	tests := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		cases []access
	}{
		{"empty list denies", nil, []access{{chr, r, 1, 3, 0}}},
		{"allow all", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, []access{{chr, r | w, 1, 3, 1}, {blk, m, 8, 0, 1}}},
		{"docker", docker, []access{
			{chr, r | w, 1, 3, 1}, // null
			{chr, m, 1, 3, 1},     // mknod null
			{chr, r | w, 1, 5, 0}, // zero: not listed
			{chr, r | w, 136, 4, 1},
			{chr, m, 136, 4, 0}, // pts: no mknod
			{blk, r, 8, 0, 1},
			{blk, r | w, 8, 0, 0}, // sda: read only
			{chr, r, 8, 0, 0},     // type matters
			{chr, m, 99, 7, 1},    // wildcard major
			{chr, r, 99, 7, 0},
		}},
		{"last rule wins", []specs.LinuxDeviceCgroup{
			{Allow: true, Access: "rwm"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(5), Access: "w"},
		}, []access{
			{chr, r, 1, 5, 1},
			{chr, w, 1, 5, 0},
			{chr, r | w, 1, 5, 0}, // a deny of w denies a read-write open
			{chr, r | w, 1, 3, 1},
		}},
		{"allow after deny", []specs.LinuxDeviceCgroup{
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(-1)},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(9)},
		}, []access{{chr, r, 1, 9, 1}, {chr, r, 1, 8, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := DeviceFilter(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.cases {
				if got := runDeviceFilter(t, prog, c.typ, c.acc, c.major, c.minor); got != c.want {
					t.Errorf("type %d access %#x %d:%d: got %d, want %d", c.typ, c.acc, c.major, c.minor, got, c.want)
				}
			}
		})
	}
}

func TestDeviceFilterErrors(t *testing.T) {
	for _, rules := range [][]specs.LinuxDeviceCgroup{
		{{Allow: true}, {Allow: true, Type: "x"}},
		{{Allow: true}, {Allow: true, Type: "c", Access: "rwx"}},
	} {
		_, err := DeviceFilter(rules)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "linux.resources.devices[1]") {
			t.Errorf("%v: error %v, want invalid naming linux.resources.devices[1]", rules, err)
		}
	}
}

// unifiedTestDir makes a cgroup in this host's cgroup2 hierarchy (the
// hybrid layout's /sys/fs/cgroup/unified, or the v2 root) and removes it at
// cleanup.
func unifiedTestDir(t *testing.T) string {
	t.Helper()
	var root string
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			root = d
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	dir := filepath.Join(root, fmt.Sprintf("berth-a2-devtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100; i++ {
			if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	return dir
}

// inCgroup runs busybox sh -c script as a child born in the cgroup v2 dir.
func inCgroup(t *testing.T, dir, script string) string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("/bin/busybox", "sh", "-c", script)
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

func TestAttachDeviceFilter(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFile(t, "/bin/busybox", "busybox-static")
	dir := unifiedTestDir(t)
	const script = `(echo x >/dev/null) 2>/dev/null && echo null-ok || echo null-denied
(head -c1 /dev/zero >/dev/null) 2>/dev/null && echo zero-ok || echo zero-denied`

	if got := inCgroup(t, dir, script); got != "null-ok\nzero-ok\n" {
		t.Fatalf("without a filter: %q", got)
	}
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	}
	if err := AttachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	if got := inCgroup(t, dir, script); got != "null-ok\nzero-denied\n" {
		t.Errorf("deny all but /dev/null: %q", got)
	}
	// A second Set replaces the program rather than stacking on it.
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rw"})
	if err := AttachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	if got := inCgroup(t, dir, script); got != "null-ok\nzero-ok\n" {
		t.Errorf("after allowing /dev/zero: %q", got)
	}
	ids, err := DevicePrograms(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Errorf("%d device programs attached, want 1", len(ids))
	}
}
