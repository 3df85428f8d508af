package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// DefaultRoot is where the cgroup hierarchies are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Options tune New.
type Options struct {
	// Root is where the hierarchies are mounted (default DefaultRoot).
	// Tests point it at a fake tree: a directory holding cgroup.controllers
	// is taken for v2; otherwise each subdirectory is a v1 hierarchy named
	// by its comma-separated controllers (e.g. "cpu,cpuacct").
	Root string
}

// Manager is one container's cgroup.
type Manager interface {
	// Apply creates the cgroup and moves pid into it.
	Apply(pid int) error
	// Set applies resource limits.
	Set(r *specs.LinuxResources) error
	Freeze() error
	Thaw() error
	// Pids lists the processes in the cgroup.
	Pids() ([]int, error)
	// Destroy removes the cgroup; it must be empty.
	Destroy() error
	// Paths maps each controller (v2: "") to the cgroup's directory.
	Paths() map[string]string
	// JoinThread moves only the calling OS thread into the (already
	// created) cgroup, so that a process it then forks is born there, and
	// returns the function that moves it back where it was. v1 only: it
	// writes "0" (the caller itself) to each hierarchy's "tasks", the one
	// migration for which the kernel skips write-locking
	// cgroup_threadgroup_rwsem, whose first writer waits for an RCU grace
	// period (15-40 ms on this machine); moving a process through
	// cgroup.procs, or a thread by its id, pays it. v2 returns an
	// errdefs.NotImplemented (use Apply, or CLONE_INTO_CGROUP). The caller
	// must hold its OS thread (runtime.LockOSThread) until it called leave:
	// a Go thread that cannot exit (the main thread) would otherwise keep
	// the cgroup busy forever.
	JoinThread() (leave func() error, err error)
	// TaskFiles opens each hierarchy's "tasks" file for writing (v1). A
	// thread, of this process or of one given the files, moves itself in
	// by writing "0" to each, as JoinThread does: no RCU grace period. v2
	// returns an errdefs.NotImplemented.
	TaskFiles() ([]*os.File, error)
}

// New returns the manager of the cgroup at path (like "/berth/<id>", taken
// relative to each hierarchy's root).
func New(path string, opts Options) (Manager, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if strings.Count(path, ":") == 2 {
		return nil, errdefs.NotImplemented(fmt.Errorf("cgroupsPath %q: systemd cgroup paths (slice:prefix:name) are not supported; berth drives cgroupfs", path))
	}
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return nil, errdefs.Invalidf("cgroup path %q: must name a cgroup below the root", path)
	}
	if _, err := os.Stat(filepath.Join(opts.Root, "cgroup.controllers")); err == nil {
		return &v2{root: opts.Root, dir: filepath.Join(opts.Root, clean)}, nil
	}
	hs, err := hierarchies(opts.Root)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, errdefs.NotImplemented(fmt.Errorf("no cgroup hierarchy found under %s", opts.Root))
	}
	m := &v1{paths: map[string]string{}, ctrls: map[string]string{}}
	for mnt, ctrls := range hs {
		dir := filepath.Join(mnt, clean)
		m.dirs = append(m.dirs, dir)
		m.mnts = append(m.mnts, mnt)
		m.hctrls = append(m.hctrls, ctrls)
		for _, c := range ctrls {
			m.ctrls[c] = dir
			m.paths[c] = dir
		}
	}
	return m, nil
}

// hierarchies maps each v1 hierarchy's mount point under root to its
// controllers. cgroup2 mounts (the hybrid layout's "unified") are ignored.
func hierarchies(root string) (map[string][]string, error) {
	if root != DefaultRoot {
		hs := map[string][]string{}
		ents, err := os.ReadDir(root)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && e.Name() != "unified" {
				hs[filepath.Join(root, e.Name())] = strings.Split(e.Name(), ",")
			}
		}
		return hs, nil
	}
	hostHierarchies.mu.Lock()
	defer hostHierarchies.mu.Unlock()
	if hostHierarchies.hs != nil {
		return hostHierarchies.hs, nil
	}
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hs, err := parseMountinfo(f, root)
	if err == nil && len(hs) > 0 {
		hostHierarchies.hs = hs
	}
	return hs, err
}

// hostHierarchies is the host's v1 hierarchies, read from mountinfo once
// per process: they are mounted as the host boots, and reading and parsing
// the mount table cost ≈ 0.4 ms of each container's create and again of
// its delete. Callers only read the map.
var hostHierarchies struct {
	mu sync.Mutex // guards hs
	hs map[string][]string
}

func parseMountinfo(r io.Reader, root string) (map[string][]string, error) {
	hs := map[string][]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 || fields[sep+1] != "cgroup" {
			continue
		}
		mnt := fields[4]
		if !strings.HasPrefix(mnt, root+"/") {
			continue
		}
		var ctrls []string
		for _, o := range strings.Split(fields[sep+3], ",") {
			switch o {
			case "rw", "ro", "relatime", "noexec", "nosuid", "nodev", "clone_children", "xattr":
				continue
			}
			if strings.HasPrefix(o, "release_agent=") {
				continue
			}
			ctrls = append(ctrls, o)
		}
		if len(ctrls) > 0 {
			hs[mnt] = ctrls
		}
	}
	return hs, sc.Err()
}

type v1 struct {
	dirs   []string          // one per hierarchy
	mnts   []string          // the hierarchy of each dir: its mount point
	hctrls [][]string        // and its controllers (or "name=...")
	ctrls  map[string]string // controller -> dir
	paths  map[string]string
}

func (m *v1) Paths() map[string]string { return m.paths }

func (m *v1) Apply(pid int) error {
	for _, dir := range m.dirs {
		if err := m.mkdir(dir); err != nil {
			return err
		}
		if pid > 0 {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdir creates dir and its parents; in the cpuset hierarchy it copies
// cpus and mems down into each new level, which the kernel leaves empty.
func (m *v1) mkdir(dir string) error {
	if m.ctrls["cpuset"] != dir {
		return os.MkdirAll(dir, 0o755)
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, _ := os.ReadFile(filepath.Join(d, f))
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
			if err != nil {
				return err
			}
			if err := writeFile(d, f, strings.TrimSpace(string(parent))); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) JoinThread() (func() error, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	own := parseProcCgroup(string(b))
	// The way back is opened first: the thread may join another mount
	// namespace before it leaves, where these paths mean something else.
	var back []*os.File
	leave := func() error {
		var errs []error
		for _, f := range back {
			if _, err := f.WriteString("0"); err != nil {
				errs = append(errs, fmt.Errorf("cgroup: move the thread back to %s: %w", f.Name(), err))
			}
			f.Close()
		}
		back = nil
		return errors.Join(errs...)
	}
	for i := range m.dirs {
		p, ok := own[m.hctrls[i][0]]
		if !ok {
			leave()
			return nil, fmt.Errorf("cgroup: this thread is in no %s cgroup (/proc/thread-self/cgroup)", m.hctrls[i][0])
		}
		f, err := os.OpenFile(filepath.Join(m.mnts[i], filepath.Clean("/"+p), "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			leave()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		back = append(back, f)
	}
	tasks, err := m.TaskFiles()
	if err != nil {
		leave()
		return nil, err
	}
	for _, f := range tasks {
		if err == nil {
			if _, err = f.WriteString("0"); err != nil {
				err = fmt.Errorf("cgroup: join %s: %w", f.Name(), err)
			}
		}
		f.Close()
	}
	if err != nil {
		leave()
		return nil, err
	}
	return leave, nil
}

func (m *v1) TaskFiles() ([]*os.File, error) {
	var files []*os.File
	for _, dir := range m.dirs {
		f, err := os.OpenFile(filepath.Join(dir, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		files = append(files, f)
	}
	return files, nil
}

// parseProcCgroup maps each v1 controller (and "name=..." hierarchy) of a
// /proc/<pid>/cgroup text to its cgroup path.
func parseProcCgroup(text string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

func (m *v1) Set(r *specs.LinuxResources) error {
	ws, err := PlanV1(r)
	if err != nil {
		return err
	}
	ws = m.orderMemory(ws)
	for _, w := range ws {
		dir, ok := m.ctrls[w.Controller]
		if !ok {
			return errdefs.NotImplemented(fmt.Errorf("cgroup: %s needs the %s controller, which this host has not mounted", w.File, w.Controller))
		}
		if err := writeFile(dir, w.File, w.Value); err != nil {
			return err
		}
	}
	return nil
}

// orderMemory puts the memsw write before the memory limit when the new
// limit is above the current memsw limit: the kernel keeps
// limit <= memsw at every step, so raising both needs memsw first.
func (m *v1) orderMemory(ws []Write) []Write {
	li, si := -1, -1
	for i, w := range ws {
		switch w.File {
		case "memory.limit_in_bytes":
			li = i
		case "memory.memsw.limit_in_bytes":
			si = i
		}
	}
	if li < 0 || si < 0 || si < li {
		return ws
	}
	dir := m.ctrls["memory"]
	cur, err := os.ReadFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"))
	if err != nil {
		return ws
	}
	curSwap, err1 := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
	newLimit, err2 := strconv.ParseInt(ws[li].Value, 10, 64)
	if err1 != nil || err2 != nil || (newLimit != -1 && newLimit <= curSwap) {
		return ws
	}
	out := append([]Write{}, ws...)
	out[li], out[si] = out[si], out[li]
	return out
}

func (m *v1) Freeze() error { return m.freezer("FROZEN") }
func (m *v1) Thaw() error   { return m.freezer("THAWED") }

func (m *v1) freezer(state string) error {
	dir, ok := m.ctrls["freezer"]
	if !ok {
		return errdefs.NotImplemented(fmt.Errorf("cgroup: no freezer controller"))
	}
	if state != "FROZEN" {
		if err := writeFile(dir, "freezer.state", state); err != nil {
			return err
		}
		for i := 0; i < 1000; i++ {
			b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == state {
				return nil
			}
			time.Sleep(time.Millisecond)
		}
		return fmt.Errorf("cgroup: freezer did not reach %s", state)
	}
	// v1 freezing can stick in FREEZING while tasks fork or exec: write
	// FROZEN again and again, thawing now and then so that new tasks are
	// caught too (runc's workaround), and never leave the cgroup half
	// frozen on failure.
	for i := 0; i < 1000; i++ {
		if i%50 == 49 {
			writeFile(dir, "freezer.state", "THAWED")
			time.Sleep(10 * time.Millisecond)
		}
		if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
			return err
		}
		if i%25 == 24 {
			time.Sleep(10 * time.Microsecond)
		}
		b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return err
		}
		switch got := strings.TrimSpace(string(b)); got {
		case "FROZEN":
			return nil
		case "FREEZING":
		default:
			return fmt.Errorf("cgroup: freezer state %s after writing FROZEN", got)
		}
	}
	writeFile(dir, "freezer.state", "THAWED")
	return fmt.Errorf("cgroup: freezer did not reach FROZEN (stuck in FREEZING; thawed again)")
}

func (m *v1) Pids() ([]int, error) {
	dir, ok := m.ctrls["pids"]
	if !ok {
		dir = m.dirs[0]
	}
	return readPids(dir)
}

func (m *v1) Destroy() error {
	var errs []error
	for _, dir := range m.dirs {
		errs = append(errs, rmdir(dir))
	}
	return errors.Join(errs...)
}

type v2 struct{ root, dir string }

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2) Apply(pid int) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	// Enable every available controller in each ancestor's
	// subtree_control, so limits can be set on the leaf.
	var chain []string // the leaf's ancestors, from the root down
	for d := filepath.Dir(m.dir); strings.HasPrefix(d, m.root); d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == m.root || d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(chain[i], "cgroup.controllers"))
		if err != nil {
			continue
		}
		var plus []string
		for _, c := range strings.Fields(string(b)) {
			plus = append(plus, "+"+c)
		}
		if len(plus) > 0 {
			if err := writeFile(chain[i], "cgroup.subtree_control", strings.Join(plus, " ")); err != nil {
				return err
			}
		}
	}
	if pid > 0 {
		return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
	}
	return nil
}

// errThreadJoinV2 is v2's answer to a thread joining alone.
var errThreadJoinV2 = errdefs.NotImplemented(errors.New("cgroup v2: a thread cannot join a domain cgroup alone"))

func (m *v2) JoinThread() (func() error, error) { return nil, errThreadJoinV2 }

func (m *v2) TaskFiles() ([]*os.File, error) { return nil, errThreadJoinV2 }

func (m *v2) Set(r *specs.LinuxResources) error {
	ws, err := PlanV2(r)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if err := writeFile(m.dir, w.File, w.Value); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		rules := append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), defaultAllowedDevices...)
		if err := AttachDeviceFilter(m.dir, rules); err != nil {
			return fmt.Errorf("cgroup: device filter on %s: %w", m.dir, err)
		}
	}
	return nil
}

func (m *v2) Freeze() error {
	if err := writeFile(m.dir, "cgroup.freeze", "1"); err != nil {
		return err
	}
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.events"))
		if err != nil || strings.Contains(string(b), "frozen 1") {
			return nil // no events file: a fake tree, nothing to wait for
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup: %s did not freeze", m.dir)
}

func (m *v2) Thaw() error          { return writeFile(m.dir, "cgroup.freeze", "0") }
func (m *v2) Pids() ([]int, error) { return readPids(m.dir) }
func (m *v2) Destroy() error       { return rmdir(m.dir) }

func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, p, err)
	}
	return nil
}

func readPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("cgroup: %s/cgroup.procs: %w", dir, err)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// rmdir removes a cgroup directory, retrying briefly while the kernel
// still counts exiting tasks in it (EBUSY).
func rmdir(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EBUSY) {
		// A fake tree (a plain directory) holds its files; a real cgroup
		// only holds sub-cgroups.
		if _, serr := os.Stat(filepath.Join(dir, "cgroup.procs")); serr == nil && !isCgroupFS(dir) {
			return os.RemoveAll(dir)
		}
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

func isCgroupFS(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}
