package spec

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		image    []string
		ctr      []string
		hostname string
		tty      bool
		home     string
		want     []string
	}{
		{"defaults", nil, nil, "h", false, "", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h"}},
		{"tty adds TERM", nil, nil, "h", true, "/root", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h", "TERM=xterm", "HOME=/root"}},
		{"image PATH replaces default in place", []string{"PATH=/x", "A=1"}, nil, "h", false, "", []string{"PATH=/x", "HOSTNAME=h", "A=1"}},
		{"container overrides image, container first", []string{"A=img", "B=img"}, []string{"B=ctr", "C=ctr"}, "h", false, "", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h", "B=ctr", "C=ctr", "A=img"}},
		{"container TERM and HOSTNAME win", nil, []string{"TERM=vt100", "HOSTNAME=mine"}, "h", true, "", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=mine", "TERM=vt100"}},
		{"bare name unsets", []string{"A=1"}, []string{"A", "PATH"}, "h", false, "", []string{"HOSTNAME=h"}},
		{"HOME kept when set", nil, []string{"HOME=/mine"}, "h", false, "/root", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h", "HOME=/mine"}},
		{"no hostname, no HOSTNAME", nil, nil, "", false, "", []string{"PATH=" + DefaultPathEnv}},
		{"empty value kept", nil, []string{"E="}, "h", false, "", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h", "E="}},
		{"value with =", nil, []string{"Q=a=b"}, "h", false, "", []string{"PATH=" + DefaultPathEnv, "HOSTNAME=h", "Q=a=b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := environment(tc.image, tc.ctr, tc.hostname, tc.tty, tc.home)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveUser(t *testing.T) {
	db := busyboxUsers()
	tests := []struct {
		spec     string
		groupAdd []string
		want     specs.User
		home     string
	}{
		{"", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}, "/root"},
		{"root", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}, "/root"},
		{"0", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}, "/root"},
		{"nobody", nil, specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{28}}, "/home"},
		{"65534", nil, specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{28}}, "/home"},
		{"www-data", []string{"users"}, specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{29, 28, 100}}, "/var/www"},
		{"sync", nil, specs.User{UID: 4, GID: 100}, "/bin"},
		{"1000", nil, specs.User{UID: 1000, GID: 0}, "/"},
		{"1000:1000", nil, specs.User{UID: 1000, GID: 1000}, "/"},
		{"nobody:audio", nil, specs.User{UID: 65534, GID: 29}, "/home"}, // explicit group: no supplementary
		{"www-data:33", []string{"audio"}, specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{29}}, "/var/www"},
		{"1000:1000", []string{"wheel", "4242", "wheel"}, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 4242}}, "/"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, home, err := resolveUser(db, tc.spec, tc.groupAdd)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if home != tc.home {
				t.Errorf("home = %q, want %q", home, tc.home)
			}
		})
	}
}

func TestResolveUserNoDB(t *testing.T) {
	u, home, err := resolveUser(nil, "", nil)
	if err != nil || u.UID != 0 || u.GID != 0 || home != "/" {
		t.Fatalf("got %+v %q %v", u, home, err)
	}
	if _, _, err := resolveUser(nil, "root", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("root without passwd: %v", err)
	}
}

// TestErrors checks that bad configurations are refused as invalid, with a
// message naming the field and the value.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Input)
		want []string // substrings of the message
	}{
		{"unknown user", func(in *Input) { in.Config.User = "alice" }, []string{"unable to find user alice: no matching entries in passwd file"}},
		{"unknown group", func(in *Input) { in.Config.User = "nobody:staff" }, []string{"unable to find group staff"}},
		{"unknown group-add", func(in *Input) { in.Host.GroupAdd = []string{"wizards"} }, []string{"unable to find group wizards"}},
		{"uid out of range", func(in *Input) { in.Config.User = "4294967296" }, []string{"User", "4294967296"}},
		{"negative uid", func(in *Input) { in.Config.User = "-1" }, []string{"-1"}},
		{"unknown cap-add", func(in *Input) { in.Host.CapAdd = []string{"CAP_FOO"} }, []string{"CapAdd", "CAP_FOO"}},
		{"unknown cap-drop", func(in *Input) { in.Host.CapDrop = []string{"bogus"} }, []string{"CapDrop", "bogus"}},
		{"relative workdir", func(in *Input) { in.Config.WorkingDir = "app" }, []string{"WorkingDir", "app"}},
		{"bad env", func(in *Input) { in.Config.Env = []string{"=x"} }, []string{"environment variable", "=x"}},
		{"sysctl not namespaced", func(in *Input) { in.Host.Sysctls = map[string]string{"kernel.core_pattern": "|/evil"} }, []string{"Sysctls", "kernel.core_pattern"}},
		{"sysctl net with host network", func(in *Input) {
			in.Host.NetworkMode = "host"
			in.Host.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, []string{"Sysctls", "net.ipv4.ip_forward", "network namespace"}},
		{"sysctl ipc with host ipc", func(in *Input) {
			in.Host.IpcMode = "host"
			in.Host.Sysctls = map[string]string{"kernel.shmmax": "1"}
		}, []string{"Sysctls", "kernel.shmmax", "IPC"}},
		{"sysctl path traversal", func(in *Input) {
			in.Host.Sysctls = map[string]string{"net/ipv4/../../kernel/core_pattern": "|/evil"}
		}, []string{"Sysctls", "net/ipv4/../../kernel/core_pattern"}},
		{"sysctl dotted traversal", func(in *Input) { in.Host.Sysctls = map[string]string{"net..kernel": "1"} }, []string{"Sysctls", "net..kernel"}},
		{"memory too small", func(in *Input) { in.Host.Memory = 1024 }, []string{"Memory", "1024", "6MB"}},
		{"swap below memory", func(in *Input) { in.Host.Memory = 64 << 20; in.Host.MemorySwap = 32 << 20 }, []string{"MemorySwap", "33554432"}},
		{"swap without memory", func(in *Input) { in.Host.MemorySwap = 64 << 20 }, []string{"MemorySwap"}},
		{"reservation above memory", func(in *Input) { in.Host.Memory = 64 << 20; in.Host.MemoryReservation = 128 << 20 }, []string{"MemoryReservation"}},
		{"swappiness", func(in *Input) { v := int64(101); in.Host.MemorySwappiness = &v }, []string{"MemorySwappiness", "101"}},
		{"nano cpus and period", func(in *Input) { in.Host.NanoCPUs = 1e9; in.Host.CPUPeriod = 100000 }, []string{"NanoCpus", "conflicting"}},
		{"cpu period", func(in *Input) { in.Host.CPUPeriod = 10 }, []string{"CpuPeriod", "10"}},
		{"cpu quota", func(in *Input) { in.Host.CPUQuota = 10 }, []string{"CpuQuota", "10"}},
		{"cpuset", func(in *Input) { in.Host.CpusetCpus = "1-0" }, []string{"CpusetCpus", "1-0"}},
		{"cpuset mems", func(in *Input) { in.Host.CpusetMems = "a" }, []string{"CpusetMems", `"a"`}},
		{"blkio weight", func(in *Input) { in.Host.BlkioWeight = 5 }, []string{"BlkioWeight", "5"}},
		{"blkio unknown device", func(in *Input) {
			in.Host.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/nope", Rate: 1}}
		}, []string{"BlkioDeviceReadBps", "/dev/nope"}},
		{"blkio char device", func(in *Input) {
			in.Host.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/fuse", Rate: 1}}
		}, []string{"BlkioDeviceReadBps", "/dev/fuse", "block"}},
		{"ulimit name", func(in *Input) { in.Host.Ulimits = []*container.Ulimit{{Name: "files", Soft: 1, Hard: 1}} }, []string{"Ulimits", "files"}},
		{"ulimit soft above hard", func(in *Input) { in.Host.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 5}} }, []string{"Ulimits", "nofile=10:5"}},
		{"oom score", func(in *Input) { in.Host.OomScoreAdj = 1001 }, []string{"OomScoreAdj", "1001"}},
		{"device rule", func(in *Input) { in.Host.DeviceCgroupRules = []string{"x 1:2 rwm"} }, []string{"DeviceCgroupRules", "x 1:2 rwm"}},
		{"device rule access", func(in *Input) { in.Host.DeviceCgroupRules = []string{"c 1:2 rwx"} }, []string{"DeviceCgroupRules", "c 1:2 rwx"}},
		{"device perms", func(in *Input) {
			in.Host.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rwq"}}
		}, []string{"Devices", "/dev/fuse", "rwq"}},
		{"device missing", func(in *Input) {
			in.Host.Devices = []container.DeviceMapping{{PathOnHost: "/dev/nope"}}
		}, []string{"Devices", "/dev/nope"}},
		{"device relative target", func(in *Input) {
			in.Host.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "fuse"}}
		}, []string{"Devices", "fuse"}},
		{"tmpfs option", func(in *Input) { in.Host.Tmpfs = map[string]string{"/run": "size=1m,evil"} }, []string{"Tmpfs", "/run", "evil"}},
		{"tmpfs relative", func(in *Input) { in.Host.Tmpfs = map[string]string{"run": ""} }, []string{"run"}},
		{"mount over root", func(in *Input) {
			in.Mounts = []specs.Mount{{Destination: "/x/..", Type: "bind", Source: "/srv"}}
		}, []string{"mount destination", "/"}},
		{"security opt", func(in *Input) { in.Host.SecurityOpt = []string{"bogus=1"} }, []string{"security-opt", "bogus=1"}},
		{"security opt no value", func(in *Input) { in.Host.SecurityOpt = []string{"bogus"} }, []string{"security-opt", "bogus"}},
		{"no-new-privileges value", func(in *Input) { in.Host.SecurityOpt = []string{"no-new-privileges=maybe"} }, []string{"no-new-privileges=maybe"}},
		{"seccomp json", func(in *Input) { in.Host.SecurityOpt = []string{"seccomp={not json"} }, []string{"seccomp"}},
		{"pid container without path", func(in *Input) { in.Host.PidMode = "container:abc" }, []string{"PidMode", "container:abc"}},
		{"ipc container without path", func(in *Input) { in.Host.IpcMode = "container:abc" }, []string{"IpcMode", "container:abc"}},
		{"net container without path", func(in *Input) { in.Host.NetworkMode = "container:abc"; in.NetNSPath = "" }, []string{"NetworkMode", "container:abc"}},
		{"bad pid mode", func(in *Input) { in.Host.PidMode = "weird" }, []string{"PidMode", "weird"}},
		{"bad ipc mode", func(in *Input) { in.Host.IpcMode = "weird" }, []string{"IpcMode", "weird"}},
		{"bad uts mode", func(in *Input) { in.Host.UTSMode = "weird" }, []string{"UTSMode", "weird"}},
		{"bad cgroupns mode", func(in *Input) { in.Host.CgroupnsMode = "weird" }, []string{"CgroupnsMode", "weird"}},
		{"cgroup parent escape", func(in *Input) { in.Host.CgroupParent = "/a/../../etc" }, []string{"CgroupParent", "/a/../../etc"}},
		{"hostname too long", func(in *Input) { in.Config.Hostname = strings.Repeat("h", 65) }, []string{"hostname"}},
		{"hostname newline", func(in *Input) { in.Config.Hostname = "a\nb" }, []string{"hostname"}},
		{"init without binary", func(in *Input) { b := true; in.Host.Init = &b }, []string{"Init"}},
		{"masked path relative", func(in *Input) { in.Host.MaskedPaths = []string{"proc/kcore"} }, []string{"MaskedPaths", "proc/kcore"}},
		{"shm size", func(in *Input) { in.Host.ShmSize = -1 }, []string{"ShmSize", "-1"}},
		{"no command", func(in *Input) { in.Path = "" }, []string{"command"}},
		{"no id", func(in *Input) { in.ID = "" }, []string{"ID"}},
		{"no rootfs", func(in *Input) { in.RootfsPath = "" }, []string{"root"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			tc.edit(&in)
			_, err := Generate(in)
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("err = %v, want an invalid-argument error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestUsernsNotImplemented(t *testing.T) {
	in := baseInput()
	in.Host.UsernsMode = "private"
	if _, err := Generate(in); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("err = %v", err)
	}
}

func TestNilConfig(t *testing.T) {
	s, err := Generate(Input{ID: testID, Path: "/hello", RootfsPath: "/r"})
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, s)
	if s.Process.User.UID != 0 || s.Process.Cwd != "/" || s.Hostname != testID[:12] {
		t.Fatalf("unexpected defaults: %+v %q", s.Process.User, s.Hostname)
	}
}

// TestCapabilities checks Docker's --cap-add/--cap-drop arithmetic.
func TestCapabilities(t *testing.T) {
	tests := []struct {
		name      string
		priv      bool
		add, drop []string
		want      []string // nil: check length only
		wantLen   int
	}{
		{"default", false, nil, nil, defaultCaps, 14},
		{"privileged", true, nil, []string{"ALL"}, nil, len(allCaps)},
		{"add all", false, []string{"all"}, nil, nil, len(allCaps)},
		{"add all drop one", false, []string{"ALL"}, []string{"CAP_SYS_ADMIN"}, nil, len(allCaps) - 1},
		{"drop all", false, nil, []string{"ALL"}, []string{}, 0},
		{"drop all add one", false, []string{"net_admin"}, []string{"all"}, []string{"CAP_NET_ADMIN"}, 1},
		{"add existing is a no-op", false, []string{"CHOWN"}, nil, defaultCaps, 14},
		{"drop then add same", false, []string{"chown"}, []string{"chown"}, nil, 14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := capabilities(tc.priv, tc.add, tc.drop, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Bounding) != tc.wantLen {
				t.Fatalf("got %d caps: %v", len(c.Bounding), c.Bounding)
			}
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, c.Bounding); diff != "" {
					t.Errorf("caps (-want +got):\n%s", diff)
				}
			}
			if !slices.Equal(c.Bounding, c.Effective) || !slices.Equal(c.Bounding, c.Permitted) {
				t.Error("bounding, effective and permitted differ")
			}
			if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Error("inheritable or ambient capabilities set (CVE-2022-24769)")
			}
		})
	}
}

func syscallNames(sc *specs.LinuxSeccomp, action specs.LinuxSeccompAction) []string {
	var out []string
	for _, s := range sc.Syscalls {
		if s.Action == action {
			out = append(out, s.Names...)
		}
	}
	return out
}

// TestSeccompDefaultFollowsCaps: the default profile allows mount only with
// CAP_SYS_ADMIN, as Docker's does.
func TestSeccompDefaultFollowsCaps(t *testing.T) {
	in := baseInput()
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("default profile missing: %+v", s.Linux.Seccomp)
	}
	if slices.Contains(syscallNames(s.Linux.Seccomp, specs.ActAllow), "mount") {
		t.Error("mount allowed without CAP_SYS_ADMIN")
	}
	if !slices.Contains(syscallNames(s.Linux.Seccomp, specs.ActAllow), "read") {
		t.Error("read not allowed")
	}
	in = baseInput()
	in.Host.CapAdd = []string{"SYS_ADMIN"}
	s, err = Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(syscallNames(s.Linux.Seccomp, specs.ActAllow), "mount") {
		t.Error("mount not allowed with CAP_SYS_ADMIN")
	}
}

func TestSeccompChoices(t *testing.T) {
	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	tests := []struct {
		name   string
		opts   []string
		input  string
		priv   bool
		want   specs.LinuxSeccompAction // "" = no seccomp
		errnos []string
	}{
		{"default", nil, "", false, specs.ActErrno, nil},
		{"unconfined", []string{"seccomp=unconfined"}, custom, false, "", nil},
		{"privileged", nil, "", true, "", nil},
		{"privileged ignores profile", []string{"seccomp=" + custom}, "", true, "", nil},
		{"input profile", nil, custom, false, specs.ActAllow, []string{"chmod"}},
		{"option beats input", []string{"seccomp=builtin"}, custom, false, specs.ActErrno, nil},
		{"option profile", []string{"seccomp=" + custom}, "", false, specs.ActAllow, []string{"chmod"}},
		{"empty profile is unconfined", []string{"seccomp={}"}, "", false, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			in.Host.SecurityOpt = tc.opts
			in.Host.Privileged = tc.priv
			in.SeccompProfile = []byte(tc.input)
			s, err := Generate(in)
			if err != nil {
				t.Fatal(err)
			}
			sc := s.Linux.Seccomp
			if tc.want == "" {
				if sc != nil {
					t.Fatalf("seccomp set: %v", sc.DefaultAction)
				}
				return
			}
			if sc == nil || sc.DefaultAction != tc.want {
				t.Fatalf("seccomp = %+v, want default %s", sc, tc.want)
			}
			if tc.errnos != nil {
				if diff := cmp.Diff(tc.errnos, syscallNames(sc, specs.ActErrno)); diff != "" {
					t.Error(diff)
				}
			}
		})
	}
}

// TestSysctlNamespaces checks which sysctls pass with which namespaces.
func TestSysctlNamespaces(t *testing.T) {
	tests := []struct {
		key        string
		net, ipc   bool
		wantAccept bool
	}{
		{"net.ipv4.ip_forward", true, true, true},
		{"net.ipv4.ip_forward", false, true, false},
		{"net/ipv4/conf/eth0.100/forwarding", true, false, true},
		{"kernel.shmmax", true, true, true},
		{"kernel.shmmax", true, false, false},
		{"kernel.msgmax", false, true, true},
		{"kernel.sem", false, true, true},
		{"fs.mqueue.msg_max", false, true, true},
		{"fs.mqueue.msg_max", true, false, false},
		{"kernel.hostname", true, true, false},
		{"vm.overcommit_memory", true, true, false},
		{"kernel/shmmax", true, true, true},
		{"net.ipv4..ip_forward", true, true, false},
		{"net/ipv4/../../kernel/core_pattern", true, true, false},
		{"net/./ipv4", true, true, false},
		{".net.ipv4", true, true, false},
		{"net.ipv4.", true, true, false},
	}
	for _, tc := range tests {
		_, err := sysctls(map[string]string{tc.key: "1"}, tc.net, tc.ipc)
		if (err == nil) != tc.wantAccept {
			t.Errorf("sysctl %s (net ns %v, ipc ns %v): err = %v, want accept %v", tc.key, tc.net, tc.ipc, err, tc.wantAccept)
		}
	}
}

func TestTmpfsOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{"noexec", "nosuid", "nodev"}},
		{"rw,size=64m", []string{"noexec", "nosuid", "nodev", "rw", "size=64m"}},
		{"exec", []string{"nosuid", "nodev", "exec"}},
		{"suid,dev,size=1k,size=2k", []string{"noexec", "suid", "dev", "size=2k"}},
		{"ro,rw", []string{"noexec", "nosuid", "nodev", "rw"}},
	}
	for _, tc := range tests {
		got, err := tmpfsOptions(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestPrivilegedNotLeakingIntoDefault guards against the defaults being
// shared: a privileged spec's edits must not show in the next spec.
func TestPrivilegedNotLeakingIntoDefault(t *testing.T) {
	in := baseInput()
	in.Host.Privileged = true
	if _, err := Generate(in); err != nil {
		t.Fatal(err)
	}
	s, err := Generate(baseInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Fatal("/sys writable in an unprivileged container")
		}
	}
	if len(s.Linux.MaskedPaths) == 0 {
		t.Fatal("masked paths lost")
	}
}

// TestCallerMountsUntouched: Generate must not modify the caller's slices.
func TestCallerMountsUntouched(t *testing.T) {
	in := baseInput()
	in.Host.ReadonlyRootfs = true
	in.Mounts = []specs.Mount{{Destination: "/data/", Type: "bind", Source: "/srv", Options: []string{"rbind"}}}
	if _, err := Generate(in); err != nil {
		t.Fatal(err)
	}
	if in.Mounts[0].Destination != "/data/" || len(in.Mounts[0].Options) != 1 {
		t.Fatalf("caller's mount changed: %+v", in.Mounts[0])
	}
}

// FuzzGenerate feeds JSON-decoded configurations (untrusted API input) to
// Generate: it must not panic, and what it accepts must be a valid spec.
func FuzzGenerate(f *testing.F) {
	f.Add([]byte(`{"User":"nobody","Env":["A=1"],"Tty":true}`), []byte(`{"CapAdd":["ALL"],"Memory":10485760}`))
	f.Add([]byte(`{"WorkingDir":"/x","Hostname":"h"}`), []byte(`{"Privileged":true,"Sysctls":{"net.ipv4.ip_forward":"1"}}`))
	f.Add([]byte(`{}`), []byte(`{"Tmpfs":{"/run":"size=1m"},"Devices":[{"PathOnHost":"/dev/snd","PathInContainer":"/dev/x"}],"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}`))
	f.Add([]byte(`{"User":"1:2"}`), []byte(`{"NetworkMode":"host","PidMode":"host","IpcMode":"none","Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}],"PidsLimit":-1}`))
	f.Add([]byte(`{}`), []byte(`{"Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1,"Mode":511}}],"DeviceCgroupRules":["c *:* m"]}`))
	f.Fuzz(func(t *testing.T, cfgJSON, hostJSON []byte) {
		var cfg container.Config
		var host container.HostConfig
		if json.Unmarshal(cfgJSON, &cfg) != nil || json.Unmarshal(hostJSON, &host) != nil {
			return
		}
		in := baseInput()
		in.Config, in.Host = &cfg, &host
		in.PidNSPath, in.IPCNSPath = "/proc/1/ns/pid", "/proc/1/ns/ipc"
		in.InitPath = "/init"
		s, err := Generate(in)
		if err != nil {
			if errdefs.ClassOf(err) == nil {
				// Every refusal of a configuration is classified.
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		checkValid(t, s)
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPrivilegedGetsWhatTheHostHas: --privileged and --cap-add ALL are
// bounded by the runtime's own capabilities (this machine's root lacks
// CAP_SYS_RESOURCE; asking for it would fail at capset).
func TestPrivilegedGetsWhatTheHostHas(t *testing.T) {
	host := []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"}
	for _, tc := range []struct {
		name       string
		privileged bool
		add        []string
	}{{"privileged", true, nil}, {"cap-add ALL", false, []string{"ALL"}}} {
		c, err := capabilities(tc.privileged, tc.add, nil, host)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(host, c.Bounding); diff != "" {
			t.Errorf("%s: bounding set (-want +got):\n%s", tc.name, diff)
		}
	}
	caps, err := HostCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(caps, "CAP_CHOWN") && os.Geteuid() == 0 {
		t.Errorf("root's bounding set %v lacks CAP_CHOWN", caps)
	}
}

// TestDockerDefaultsFromTheReview: behaviours Docker has that a review of
// moby's oci_linux.go found missing.
func TestDockerDefaultsFromTheReview(t *testing.T) {
	yes := true
	umask := uint32(0o027)
	gen := func(edit func(*Input)) *specs.Spec {
		t.Helper()
		in := baseInput()
		in.InitPath = "/usr/libexec/berth-init"
		edit(&in)
		s, err := Generate(in)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Own network namespace: ping and low ports without capabilities; a
	// --sysctl wins.
	s := gen(func(in *Input) { in.Host.Sysctls = map[string]string{"net/ipv4/ping_group_range": "1 1"} })
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || s.Linux.Sysctl["net/ipv4/ping_group_range"] != "1 1" {
		t.Errorf("sysctls = %v", s.Linux.Sysctl)
	}
	if _, dup := s.Linux.Sysctl["net.ipv4.ping_group_range"]; dup {
		t.Errorf("default kept beside the user's value: %v", s.Linux.Sysctl)
	}
	if s := gen(func(in *Input) { in.Host.NetworkMode = "host" }); len(s.Linux.Sysctl) != 0 {
		t.Errorf("host network got sysctls %v", s.Linux.Sysctl)
	}
	// --init only where the container has its own pid namespace.
	if s := gen(func(in *Input) { in.Host.Init = &yes }); s.Process.Args[0] != InitDestination {
		t.Errorf("--init: args %v", s.Process.Args)
	}
	if s := gen(func(in *Input) { in.Host.Init, in.Host.PidMode = &yes, "host" }); s.Process.Args[0] == InitDestination {
		t.Errorf("--init with --pid host: args %v", s.Process.Args)
	}
	// --umask (API 1.56 HostConfig.Umask).
	if s := gen(func(in *Input) { in.Host.Umask = &umask }); s.Process.User.Umask == nil || *s.Process.User.Umask != umask {
		t.Errorf("umask = %v", s.Process.User.Umask)
	}
}
