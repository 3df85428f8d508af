package dockerapi

import (
	"bufio"
	"context"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/version"
)

func (s *Server) routeInfo() {
	s.handle("GET /info", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, s.info(r.Context()))
	})
	s.handle("POST /auth", s.login)
}

// info is GET /info: what `docker info` prints.
func (s *Server) info(ctx context.Context) system.Info {
	v := VersionInfo()
	hostname, _ := os.Hostname()
	in := system.Info{
		ID:                 s.cfg.DaemonID,
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		NFd:                openFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion(),
		KernelVersion:      v.KernelVersion,
		OperatingSystem:    osRelease(),
		OSType:             "linux",
		Architecture:       kernelArch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      s.cfg.DataRoot,
		Name:               hostname,
		Labels:             []string{},
		ServerVersion:      version.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {}},
		DefaultRuntime:     "berth",
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
		Warnings:           []string{},
	}
	mirrors := append([]string{}, s.cfg.RegistryMirrors...)
	in.RegistryConfig = &registry.ServiceConfig{
		IndexConfigs: map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Mirrors: mirrors, Secure: true, Official: true}},
		Mirrors:      mirrors,
		// Loopback registries are reached over plain HTTP, as dockerd's
		// default 127.0.0.0/8.
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	for _, h := range s.cfg.InsecureRegistries {
		if _, ok := in.RegistryConfig.IndexConfigs[h]; !ok {
			in.RegistryConfig.IndexConfigs[h] = &registry.IndexInfo{Name: h, Mirrors: []string{}}
		}
	}
	if s.cfg.Containers != nil {
		all, _ := s.cfg.Containers.List(ctx, berthc.ListOptions{All: true})
		in.Containers = len(all)
		for _, c := range all {
			switch c.State {
			case "running":
				in.ContainersRunning++
			case "paused":
				in.ContainersPaused++
			default:
				in.ContainersStopped++
			}
		}
	}
	return in
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// cgroupVersion is "2" on a pure cgroup v2 host, "1" otherwise (hybrid
// hosts, like this project's, run containers on v1).
func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}

func osRelease() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func kernelArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
