package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json golden files")

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
audio:x:29:www-data
www-data:x:33:
users:x:100:
video:x:28:www-data,nobody
nogroup:x:65534:
`

func busyboxUsers() MapUserDB {
	return MapUserDB{
		UserList:  ParsePasswd(strings.NewReader(busyboxPasswd)),
		GroupList: ParseGroup(strings.NewReader(busyboxGroup)),
	}
}

// fakeDevices is a DeviceLookupFunc over a fixed table.
func fakeDevices(p string) ([]specs.LinuxDevice, error) {
	mode := os.FileMode(0o660)
	zero := uint32(0)
	table := map[string][]specs.LinuxDevice{
		"/dev/fuse": {{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &zero, GID: &zero}},
		"/dev/sda":  {{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &mode, UID: &zero, GID: &zero}},
		"/dev/snd": {
			{Path: "/dev/snd/controlC0", Type: "c", Major: 116, Minor: 0, FileMode: &mode, UID: &zero, GID: &zero},
			{Path: "/dev/snd/timer", Type: "c", Major: 116, Minor: 33, FileMode: &mode, UID: &zero, GID: &zero},
		},
		"/dev": {
			{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: &zero, GID: &zero},
			{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &mode, UID: &zero, GID: &zero},
		},
	}
	d, ok := table[p]
	if !ok {
		return nil, fmt.Errorf("no such device %s", p)
	}
	return d, nil
}

// baseInput is `docker run busybox sh` on a bridge network.
func baseInput() Input {
	return Input{
		ID:     testID,
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh"}},
		Host:   &container.HostConfig{NetworkMode: "bridge"},
		Image: container.Config{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
		Path:           "sh",
		RootfsPath:     "/var/lib/berth/containers/" + testID + "/rootfs",
		Users:          busyboxUsers(),
		NetNSPath:      "/run/berth/netns/" + testID[:12],
		HostsPath:      "/var/lib/berth/containers/" + testID + "/hosts",
		ResolvConfPath: "/var/lib/berth/containers/" + testID + "/resolv.conf",
		HostnamePath:   "/var/lib/berth/containers/" + testID + "/hostname",
		LookupDevice:   fakeDevices,
	}
}

func i64(v int64) *int64 { return &v }
func yes() *bool         { b := true; return &b }

var goldenCases = []struct {
	name string
	edit func(*Input)
}{
	{"default", func(*Input) {}},
	{"privileged", func(in *Input) { in.Host.Privileged = true }},
	{"cap-add-all", func(in *Input) {
		in.Host.CapAdd = []string{"ALL"}
		in.Host.CapDrop = []string{"sys_admin", "CAP_NET_ADMIN"}
	}},
	{"cap-drop-all", func(in *Input) {
		in.Host.CapDrop = []string{"all"}
		in.Host.CapAdd = []string{"chown", "CAP_NET_BIND_SERVICE"}
	}},
	{"cap-add-drop", func(in *Input) {
		in.Host.CapAdd = []string{"SYS_ADMIN", "cap_net_admin"}
		in.Host.CapDrop = []string{"NET_RAW", "mknod"}
	}},
	{"readonly-tmpfs", func(in *Input) {
		in.Host.ReadonlyRootfs = true
		in.Host.Tmpfs = map[string]string{"/run": "rw,size=64m", "/tmp": "exec,mode=1777"}
		in.Host.Mounts = []mount.Mount{{Type: mount.TypeTmpfs, Target: "/cache", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700}}}
	}},
	{"resources", func(in *Input) {
		in.Host.Memory = 256 << 20
		in.Host.MemorySwap = -1
		in.Host.MemoryReservation = 128 << 20
		in.Host.CPUShares = 512
		in.Host.NanoCPUs = 1_500_000_000
		in.Host.CpusetCpus = "0-1"
		in.Host.CpusetMems = "0"
		in.Host.PidsLimit = i64(100)
		in.Host.BlkioWeight = 300
		in.Host.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 1 << 20}}
		in.Host.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 100}}
		in.Host.OomKillDisable = yes()
		in.Host.OomScoreAdj = 500
		in.Host.ShmSize = 128 << 20
	}},
	{"cpu-period-quota", func(in *Input) {
		in.Host.CPUPeriod = 50000
		in.Host.CPUQuota = 25000
		in.Host.Memory = 64 << 20
		in.Host.PidsLimit = i64(0)
	}},
	{"user-nobody", func(in *Input) { in.Config.User = "nobody" }},
	{"user-uid-gid-groupadd", func(in *Input) {
		in.Config.User = "1000:1000"
		in.Host.GroupAdd = []string{"audio", "4242", "wheel"}
	}},
	{"image-user-workdir-env", func(in *Input) {
		in.Image.User = "www-data"
		in.Image.WorkingDir = "/var/www"
		in.Image.Env = append(in.Image.Env, "A=image", "B=image")
		in.Config.Env = []string{"B=ctr", "C=ctr", "PATH=/custom/bin"}
	}},
	{"ulimits", func(in *Input) {
		in.Host.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: -1, Hard: -1}, {Name: "nproc", Soft: 100, Hard: 200}}
	}},
	{"sysctls", func(in *Input) {
		in.Host.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000000", "fs.mqueue.msg_max": "20", "net/ipv4/conf/eth0.100/forwarding": "1"}
	}},
	{"network-host", func(in *Input) { in.Host.NetworkMode = "host" }},
	{"network-none", func(in *Input) { in.Host.NetworkMode = "none"; in.NetNSPath = "" }},
	{"network-container", func(in *Input) {
		in.Host.NetworkMode = "container:abc"
		in.NetNSPath = "/proc/4242/ns/net"
	}},
	{"pid-host", func(in *Input) { in.Host.PidMode = "host" }},
	{"ipc-host-uts-host", func(in *Input) { in.Host.IpcMode = "host"; in.Host.UTSMode = "host" }},
	{"ipc-shareable", func(in *Input) {
		in.Host.IpcMode = "shareable"
		in.ShmPath = "/var/lib/berth/containers/" + testID + "/mounts/shm"
	}},
	{"ipc-none", func(in *Input) { in.Host.IpcMode = "none" }},
	{"cgroupns-private", func(in *Input) { in.CgroupNS = true; in.CgroupParent = "/custom" }},
	{"tty", func(in *Input) {
		in.Config.Tty = true
		in.Config.Hostname = "box"
		in.Config.Domainname = "example.org"
		in.Host.ConsoleSize = [2]uint{40, 120}
	}},
	{"seccomp-unconfined", func(in *Input) { in.Host.SecurityOpt = []string{"seccomp=unconfined"} }},
	{"seccomp-custom", func(in *Input) {
		in.Host.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmod"],"action":"SCMP_ACT_ERRNO"}]}`}
	}},
	{"no-new-privileges", func(in *Input) {
		in.Host.SecurityOpt = []string{"no-new-privileges:true", "label=disable", "apparmor=unconfined"}
	}},
	{"systempaths-unconfined", func(in *Input) {
		in.Host.SecurityOpt = []string{"systempaths=unconfined", "writable-cgroups=true"}
	}},
	{"init", func(in *Input) {
		in.Host.Init = yes()
		in.InitPath = "/usr/libexec/berth/berth-init"
		in.Args = []string{"-c", "echo hi"}
	}},
	{"devices", func(in *Input) {
		in.Host.Devices = []container.DeviceMapping{
			{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
			{PathOnHost: "/dev/snd", PathInContainer: "/dev/sound", CgroupPermissions: "rw"},
		}
		in.Host.DeviceCgroupRules = []string{"c 42:* rmw", "b 8:0 r"}
	}},
	{"mounts", func(in *Input) {
		in.Mounts = []specs.Mount{
			{Destination: "/data/sub", Type: "bind", Source: "/srv/sub", Options: []string{"rbind", "ro"}},
			{Destination: "/data", Type: "bind", Source: "/var/lib/berth/volumes/v1/_data", Options: []string{"rbind"}},
			{Destination: "/dev/shm", Type: "bind", Source: "/srv/shm", Options: []string{"rbind"}},
			{Destination: "/etc/hosts/", Type: "bind", Source: "/srv/hosts", Options: []string{"rbind", "ro"}},
		}
		in.Host.Tmpfs = map[string]string{"/data": ""}
	}},
	{"masked-readonly-override", func(in *Input) {
		in.Host.MaskedPaths = []string{"/proc/kcore/"}
		in.Host.ReadonlyPaths = []string{}
	}},
}

// goldenView is what a golden file holds: the spec with the seccomp
// rules summarized (their count depends on the architecture and the
// profile library's version, their content is tested separately).
type goldenView struct {
	Spec    *specs.Spec `json:"spec"`
	Seccomp string      `json:"seccomp"`
}

func golden(t *testing.T, s *specs.Spec) []byte {
	t.Helper()
	c := *s
	v := goldenView{Spec: &c, Seccomp: "none"}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		l := *s.Linux
		sc := *l.Seccomp
		// The rule count depends on the host kernel (minKernel), so it is
		// left out: goldens must not change from one machine to another.
		v.Seccomp = fmt.Sprintf("defaultAction=%s defaultErrnoRet=%v architectures=%v", sc.DefaultAction, derefUint(sc.DefaultErrnoRet), sc.Architectures)
		l.Seccomp = nil
		c.Linux = &l
	}
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func derefUint(p *uint) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			tc.edit(&in)
			s, err := Generate(in)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			checkValid(t, s)
			got := golden(t, s)
			file := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from Generate's output (run with -update after checking):\n%s", file, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)) && len(out) < 20; i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b))
		}
	}
	return strings.Join(out, "\n")
}

// checkValid asserts what every spec must satisfy for the runtime.
func checkValid(t testing.TB, s *specs.Spec) {
	t.Helper()
	if s.Root == nil || s.Root.Path == "" {
		t.Fatal("root.path is empty")
	}
	if s.Process == nil || len(s.Process.Args) == 0 || s.Process.Args[0] == "" {
		t.Fatal("process.args is empty")
	}
	if !strings.HasPrefix(s.Process.Cwd, "/") {
		t.Fatalf("process.cwd %q is not absolute", s.Process.Cwd)
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if seen[n.Type] {
			t.Fatalf("namespace %s listed twice", n.Type)
		}
		seen[n.Type] = true
	}
	if !seen[specs.MountNamespace] {
		t.Fatal("no mount namespace")
	}
	dsts := map[string]bool{}
	for _, m := range s.Mounts {
		if !strings.HasPrefix(m.Destination, "/") || m.Destination == "/" || strings.Contains(m.Destination, "/../") || strings.HasSuffix(m.Destination, "/..") {
			t.Fatalf("bad mount destination %q", m.Destination)
		}
		if dsts[m.Destination] {
			t.Fatalf("two mounts at %s", m.Destination)
		}
		dsts[m.Destination] = true
	}
	for i := 1; i < len(s.Mounts); i++ {
		if depth(s.Mounts[i].Destination) < depth(s.Mounts[i-1].Destination) {
			t.Fatalf("mount %s comes after deeper %s", s.Mounts[i].Destination, s.Mounts[i-1].Destination)
		}
	}
	if s.Linux.Resources == nil {
		t.Fatal("no resources")
	}
}
