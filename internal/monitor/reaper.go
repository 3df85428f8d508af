package monitor

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reaper collects the exit statuses of the monitor's children. It reaps
// only the pids it was told to watch, so other code in the process (the
// runtime running a hook through os/exec) keeps its own children's
// statuses; zombies nobody claims, such as processes of a --pid host
// container orphaned to the monitor (a subreaper), are swept after they
// have stayed zombies for a whole sweep interval.
type reaper struct {
	mu      sync.Mutex        // guards watched and seen
	watched map[int]func(int) // pid → called once with its Docker exit code
	seen    map[int]bool      // unclaimed zombies seen at the last sweep
	kick    chan struct{}
}

func newReaper() *reaper {
	return &reaper{watched: map[int]func(int){}, seen: map[int]bool{}, kick: make(chan struct{}, 1)}
}

// watch calls onExit with pid's exit code once it exits. The pid must be
// a child (or become one by reparenting) of this process.
func (r *reaper) watch(pid int, onExit func(code int)) {
	r.mu.Lock()
	r.watched[pid] = onExit
	r.mu.Unlock()
	r.poke() // it may have exited already
}

func (r *reaper) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run reaps until ctx ends.
func (r *reaper) run(ctx context.Context, sweepEvery time.Duration) {
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, unix.SIGCHLD)
	defer signal.Stop(sigc)
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigc:
		case <-r.kick:
		case <-sweep.C:
			r.sweepOrphans()
		}
		r.reapWatched()
	}
}

func (r *reaper) reapWatched() {
	r.mu.Lock()
	var exited []func(int)
	var codes []int
	for pid, fn := range r.watched {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case got == pid:
			exited, codes = append(exited, fn), append(codes, exitCode(ws))
			delete(r.watched, pid)
		case err == unix.ECHILD && unix.Kill(pid, 0) == unix.ESRCH:
			// Not our child and gone: it was reaped elsewhere. Its status is
			// lost; report what Docker reports for an unknown end.
			exited, codes = append(exited, fn), append(codes, 255)
			delete(r.watched, pid)
		}
	}
	r.mu.Unlock()
	for i, fn := range exited {
		fn(codes[i])
	}
}

// sweepOrphans reaps child zombies that no watcher claims and that were
// already zombies at the previous sweep.
func (r *reaper) sweepOrphans() {
	zombies := childZombies(os.Getpid())
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[int]bool{}
	for _, pid := range zombies {
		if _, ok := r.watched[pid]; ok {
			continue
		}
		if r.seen[pid] {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			continue
		}
		next[pid] = true
	}
	r.seen = next
}

// exitCode is Docker's exit code for a wait status: the status, or 128 +
// the signal that killed it.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// childZombies lists the zombie children of ppid, from /proc.
func childZombies(ppid int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var out []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		state, parent, ok := parseStat(string(b))
		if ok && state == 'Z' && parent == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// parseStat reads the state and parent pid from /proc/PID/stat, whose
// second field (the command, in parentheses) may itself hold spaces and
// parentheses.
func parseStat(s string) (state byte, ppid int, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+4 >= len(s) {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+1:]) // "S 1234 ..."
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return fields[0][0], ppid, err == nil
}
