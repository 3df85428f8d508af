package cli

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"

	"github.com/berth/berth/internal/errdefs"
)

// hostOptions are the create/run flags that fill the HostConfig's
// isolation, storage and resource settings, with docker's names.
type hostOptions struct {
	volumes, mounts, tmpfs, volumesFrom   []string
	init, privileged, readOnly            bool
	capAdd, capDrop, secOpts              []string
	memory, memorySwap, shmSize           string
	cpus                                  float64
	cpuShares                             int64
	cpusetCPUs, cpusetMems                string
	pidsLimit                             int64
	ulimits, sysctls, devices             []string
	groupAdd, envFiles                    []string
	pid, ipc, uts, cgroupns, cgroupParent string
	oomScoreAdj                           int
}

func (o *hostOptions) addFlags(f *pflag.FlagSet) {
	stringArrayVarP(f, &o.volumes, "volume", "v", nil, "bind mount a volume ([SOURCE:]DESTINATION[:OPTIONS])")
	stringArrayVar(f, &o.mounts, "mount", nil, "attach a filesystem mount to the container (type=bind|volume|tmpfs,source=...,target=...)")
	stringArrayVar(f, &o.volumesFrom, "volumes-from", nil, "mount volumes from the specified container(s) (CONTAINER[:ro|:rw])")
	stringArrayVar(f, &o.tmpfs, "tmpfs", nil, "mount a tmpfs directory (DESTINATION[:OPTIONS])")
	f.BoolVar(&o.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	f.BoolVar(&o.privileged, "privileged", false, "give extended privileges to this container")
	f.BoolVar(&o.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	stringArrayVar(f, &o.capAdd, "cap-add", nil, "add Linux capabilities")
	stringArrayVar(f, &o.capDrop, "cap-drop", nil, "drop Linux capabilities")
	stringArrayVar(f, &o.secOpts, "security-opt", nil, "security options")
	f.StringVarP(&o.memory, "memory", "m", "", "memory limit")
	f.StringVar(&o.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	f.StringVar(&o.shmSize, "shm-size", "", "size of /dev/shm")
	f.Float64Var(&o.cpus, "cpus", 0, "number of CPUs")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	stringArrayVar(f, &o.ulimits, "ulimit", nil, "ulimit options (name=soft[:hard])")
	stringArrayVar(f, &o.sysctls, "sysctl", nil, "sysctl options (name=value)")
	stringArrayVar(f, &o.devices, "device", nil, "add a host device to the container (HOST[:CONTAINER[:PERMISSIONS]])")
	stringArrayVar(f, &o.groupAdd, "group-add", nil, "add additional groups to join")
	stringArrayVar(f, &o.envFiles, "env-file", nil, "read in a file of environment variables")
	f.StringVar(&o.pid, "pid", "", "PID namespace to use")
	f.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	f.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	f.StringVar(&o.cgroupns, "cgroupns", "", `cgroup namespace to use: "host" or "private" (default: the daemon's)`)
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", "optional parent cgroup for the container")
	f.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "tune host's OOM preferences (-1000 to 1000)")
}

// apply fills cfg and hc from the flags; errors name the flag.
func (o *hostOptions) apply(f *pflag.FlagSet, cfg *container.Config, hc *container.HostConfig) error {
	hc.Binds, hc.VolumesFrom = o.volumes, o.volumesFrom
	for _, m := range o.mounts {
		mt, err := parseMountFlag(m)
		if err != nil {
			return err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	if len(o.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range o.tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[dst] = opts
		}
	}
	if f.Changed("init") {
		hc.Init = &o.init
	}
	hc.Privileged, hc.ReadonlyRootfs = o.privileged, o.readOnly
	hc.CapAdd, hc.CapDrop, hc.SecurityOpt = o.capAdd, o.capDrop, o.secOpts
	var err error
	if hc.Memory, err = bytesFlag("memory", o.memory); err != nil {
		return err
	}
	if o.memorySwap == "-1" {
		hc.MemorySwap = -1
	} else if hc.MemorySwap, err = bytesFlag("memory-swap", o.memorySwap); err != nil {
		return err
	}
	if hc.ShmSize, err = bytesFlag("shm-size", o.shmSize); err != nil {
		return err
	}
	if o.cpus < 0 || o.cpus > math.MaxInt64/1e9 {
		return errdefs.Invalidf("invalid argument %v for \"--cpus\" flag: range is 0 to %d", o.cpus, math.MaxInt64/int64(1e9))
	}
	hc.NanoCPUs = int64(o.cpus * 1e9)
	hc.CPUShares, hc.CpusetCpus, hc.CpusetMems = o.cpuShares, o.cpusetCPUs, o.cpusetMems
	if f.Changed("pids-limit") {
		hc.PidsLimit = &o.pidsLimit
	}
	for _, u := range o.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return errdefs.Invalidf("invalid argument %q for \"--ulimit\" flag: %v", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: ul.Name, Soft: ul.Soft, Hard: ul.Hard})
	}
	if len(o.sysctls) > 0 {
		hc.Sysctls = map[string]string{}
		for _, s := range o.sysctls {
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return errdefs.Invalidf("invalid argument %q for \"--sysctl\" flag: want name=value", s)
			}
			hc.Sysctls[k] = v
		}
	}
	for _, d := range o.devices {
		dm, err := parseDeviceFlag(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, dm)
	}
	hc.GroupAdd = o.groupAdd
	hc.PidMode, hc.IpcMode, hc.UTSMode = container.PidMode(o.pid), container.IpcMode(o.ipc), container.UTSMode(o.uts)
	if o.cgroupns != "" {
		if m := container.CgroupnsMode(o.cgroupns); !m.Valid() {
			return errdefs.Invalidf("invalid argument %q for \"--cgroupns\" flag: want host or private", o.cgroupns)
		}
		hc.CgroupnsMode = container.CgroupnsMode(o.cgroupns)
	}
	hc.CgroupParent, hc.OomScoreAdj = o.cgroupParent, o.oomScoreAdj
	for _, path := range o.envFiles {
		env, err := readEnvFile(path)
		if err != nil {
			return err
		}
		cfg.Env = append(env, cfg.Env...) // -e wins over --env-file
	}
	return nil
}

// bytesFlag parses a size like docker's -m: 512m, 1g, 1024 (bytes).
func bytesFlag(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, errdefs.Invalidf("invalid argument %q for \"--%s\" flag: %v", v, name, err)
	}
	return n, nil
}

// parseMountFlag reads --mount's comma-separated key=value list.
func parseMountFlag(v string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	bad := func(format string, args ...any) (mount.Mount, error) {
		return mount.Mount{}, errdefs.Invalidf("invalid argument %q for \"--mount\" flag: %s", v, fmt.Sprintf(format, args...))
	}
	for _, field := range strings.Split(v, ",") {
		key, val, hasVal := strings.Cut(field, "=")
		// flag is a boolean key's value: true when given bare.
		flag := func() (bool, error) {
			if !hasVal {
				return true, nil
			}
			return strconv.ParseBool(val)
		}
		switch strings.ToLower(key) {
		case "type":
			m.Type = mount.Type(val)
		case "source", "src":
			m.Source = val
		case "target", "destination", "dst":
			m.Target = val
		case "readonly", "ro":
			ro, err := flag()
			if err != nil {
				return bad("invalid value for %s: %s", key, val)
			}
			m.ReadOnly = ro
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(val)
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return bad("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return bad("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.Mode = os.FileMode(n)
		case "volume-nocopy":
			nocopy, err := flag()
			if err != nil {
				return bad("invalid value for %s: %s", key, val)
			}
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.NoCopy = nocopy
		case "consistency":
		default:
			return bad("unexpected key '%s' in '%s'", key, field)
		}
	}
	if m.Target == "" {
		return bad("target is required")
	}
	return m, nil
}

// parseDeviceFlag reads --device HOST[:CONTAINER[:PERMISSIONS]].
func parseDeviceFlag(v string) (container.DeviceMapping, error) {
	parts := strings.Split(v, ":")
	d := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isPermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
		if !isPermissions(parts[2]) {
			return d, errdefs.Invalidf("invalid argument %q for \"--device\" flag: bad permissions %q", v, parts[2])
		}
	default:
		return d, errdefs.Invalidf("invalid argument %q for \"--device\" flag: want HOST[:CONTAINER[:PERMISSIONS]]", v)
	}
	return d, nil
}

func isPermissions(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	return strings.Trim(s, "rwm") == ""
}

// readEnvFile reads docker's --env-file format: NAME=value lines, NAME
// alone takes the variable from this environment, # starts a comment.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.Invalidf("--env-file: %v", err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, hasValue := strings.Cut(line, "=")
		if name == "" || strings.ContainsAny(name, " \t") {
			return nil, errdefs.Invalidf("--env-file %s line %d: variable name %q has white spaces or is empty", path, n, name)
		}
		if !hasValue {
			if v, ok := os.LookupEnv(name); ok {
				env = append(env, name+"="+v)
			}
			continue
		}
		env = append(env, line)
	}
	return env, sc.Err()
}
