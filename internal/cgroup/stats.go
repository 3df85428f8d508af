package cgroup

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats is a snapshot of a cgroup's resource use, the same shape on v1
// and v2 (what `docker stats` and the events/stats API need). A value the
// host does not provide stays zero.
type Stats struct {
	Memory MemoryStats
	CPU    CPUStats
	Pids   PidsStats
	// IO lists bytes and operations per device and direction.
	IO []IOStat
}

// MemoryStats are in bytes. Limit 0 means no limit.
type MemoryStats struct {
	Usage    uint64 // v1 memory.usage_in_bytes, v2 memory.current
	MaxUsage uint64 // v1 memory.max_usage_in_bytes, v2 memory.peak (kernel >= 5.19)
	Limit    uint64 // v1 memory.limit_in_bytes, v2 memory.max
	Failcnt  uint64 // v1 memory.failcnt, v2 memory.events "max"
	// Stat is memory.stat as keyed numbers (cache, rss, inactive_file, ...).
	Stat map[string]uint64
}

// CPUStats are in nanoseconds.
type CPUStats struct {
	Usage            uint64 // total
	User             uint64
	System           uint64
	PerCPU           []uint64 // v1 cpuacct.usage_percpu only
	Periods          uint64   // CFS periods elapsed with a quota
	ThrottledPeriods uint64
	ThrottledTime    uint64
}

// PidsStats counts tasks. Limit 0 means no limit.
type PidsStats struct {
	Current uint64
	Limit   uint64
}

// IOStat is one device's counter for one operation: "Read", "Write" (v1
// names, also used for v2's rbytes/wbytes) in Bytes or in IOs.
type IOStat struct {
	Major, Minor uint64
	Op           string
	Bytes        uint64
	IOs          uint64
}

// ReadStats reads m's resource use through its Paths: a v1 manager names
// a directory per controller, a v2 manager one directory under "".
func ReadStats(m Manager) (*Stats, error) {
	paths := m.Paths()
	if dir, ok := paths[""]; ok {
		return statsV2(dir)
	}
	return statsV1(paths)
}

func statsV1(paths map[string]string) (*Stats, error) {
	s := &Stats{}
	var errs []error
	keep := func(err error) {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if dir, ok := paths["memory"]; ok {
		var err error
		s.Memory.Usage, err = readUint(dir, "memory.usage_in_bytes")
		keep(err)
		s.Memory.MaxUsage, err = readUint(dir, "memory.max_usage_in_bytes")
		keep(err)
		s.Memory.Limit, err = readUint(dir, "memory.limit_in_bytes")
		keep(err)
		if s.Memory.Limit >= 1<<62 { // v1 says "no limit" with a huge page-rounded number
			s.Memory.Limit = 0
		}
		s.Memory.Failcnt, err = readUint(dir, "memory.failcnt")
		keep(err)
		s.Memory.Stat, err = readKeyed(dir, "memory.stat")
		keep(err)
	}
	if dir, ok := paths["cpuacct"]; ok {
		var err error
		s.CPU.Usage, err = readUint(dir, "cpuacct.usage")
		keep(err)
		if b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage_percpu")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				n, _ := strconv.ParseUint(f, 10, 64)
				s.CPU.PerCPU = append(s.CPU.PerCPU, n)
			}
		} else {
			keep(err)
		}
		st, err := readKeyed(dir, "cpuacct.stat")
		keep(err)
		// cpuacct.stat counts USER_HZ ticks; USER_HZ is 100 on Linux.
		s.CPU.User = st["user"] * 1e7
		s.CPU.System = st["system"] * 1e7
	}
	if dir, ok := paths["cpu"]; ok {
		st, err := readKeyed(dir, "cpu.stat")
		keep(err)
		s.CPU.Periods = st["nr_periods"]
		s.CPU.ThrottledPeriods = st["nr_throttled"]
		s.CPU.ThrottledTime = st["throttled_time"]
	}
	if dir, ok := paths["pids"]; ok {
		var err error
		s.Pids.Current, err = readUint(dir, "pids.current")
		keep(err)
		s.Pids.Limit, err = readUint(dir, "pids.max") // "max" reads as 0
		keep(err)
	}
	if dir, ok := paths["blkio"]; ok {
		for _, f := range []struct {
			file  string
			bytes bool
		}{
			{"blkio.throttle.io_service_bytes_recursive", true},
			{"blkio.throttle.io_serviced_recursive", false},
		} {
			b, err := os.ReadFile(filepath.Join(dir, f.file))
			if err != nil {
				keep(err)
				continue
			}
			s.IO = append(s.IO, parseBlkio(string(b), f.bytes)...)
		}
	}
	return s, errors.Join(errs...)
}

func statsV2(dir string) (*Stats, error) {
	s := &Stats{}
	var errs []error
	keep := func(err error) {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	var err error
	s.Memory.Usage, err = readUint(dir, "memory.current")
	keep(err)
	s.Memory.MaxUsage, err = readUint(dir, "memory.peak")
	keep(err)
	s.Memory.Limit, err = readUint(dir, "memory.max")
	keep(err)
	ev, err := readKeyed(dir, "memory.events")
	keep(err)
	s.Memory.Failcnt = ev["max"]
	s.Memory.Stat, err = readKeyed(dir, "memory.stat")
	keep(err)
	st, err := readKeyed(dir, "cpu.stat")
	keep(err)
	s.CPU.Usage = st["usage_usec"] * 1000
	s.CPU.User = st["user_usec"] * 1000
	s.CPU.System = st["system_usec"] * 1000
	s.CPU.Periods = st["nr_periods"]
	s.CPU.ThrottledPeriods = st["nr_throttled"]
	s.CPU.ThrottledTime = st["throttled_usec"] * 1000
	s.Pids.Current, err = readUint(dir, "pids.current")
	keep(err)
	s.Pids.Limit, err = readUint(dir, "pids.max")
	keep(err)
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		s.IO = parseIOStat(string(b))
	} else {
		keep(err)
	}
	return s, errors.Join(errs...)
}

// readUint reads a file holding one number; "max" reads as 0 (no limit).
func readUint(dir, file string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return parseUint(strings.TrimSpace(string(b))), nil
}

func parseUint(s string) uint64 {
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 writes -1 for "no limit" in some files.
		return 0
	}
	return n
}

// readKeyed reads a flat-keyed file ("key value" per line).
func readKeyed(dir, file string) (map[string]uint64, error) {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return map[string]uint64{}, err
	}
	defer f.Close()
	return parseKeyed(bufio.NewScanner(f)), nil
}

func parseKeyed(sc *bufio.Scanner) map[string]uint64 {
	m := map[string]uint64{}
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok {
			m[k] = parseUint(strings.TrimSpace(v))
		}
	}
	return m
}

// parseBlkio parses v1 "MAJ:MIN Op value" lines (skipping "Total").
func parseBlkio(s string, bytes bool) []IOStat {
	var out []IOStat
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		st := IOStat{Major: maj, Minor: min, Op: f[1]}
		if bytes {
			st.Bytes = parseUint(f[2])
		} else {
			st.IOs = parseUint(f[2])
		}
		out = append(out, st)
	}
	return out
}

// parseIOStat parses v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...".
func parseIOStat(s string) []IOStat {
	var out []IOStat
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		read := IOStat{Major: maj, Minor: min, Op: "Read"}
		write := IOStat{Major: maj, Minor: min, Op: "Write"}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n := parseUint(v)
			switch k {
			case "rbytes":
				read.Bytes = n
			case "wbytes":
				write.Bytes = n
			case "rios":
				read.IOs = n
			case "wios":
				write.IOs = n
			}
		}
		out = append(out, read, write)
	}
	return out
}

func parseDev(s string) (maj, min uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	maj, err1 = strconv.ParseUint(a, 10, 64)
	min, err2 = strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}
