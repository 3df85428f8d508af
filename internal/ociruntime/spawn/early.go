package spawn

import (
	"syscall"

	"github.com/berth/berth/internal/ociruntime/initbin/blob"
)

// An early spare: a `berth runtime create` or `run` is a fresh process
// whose container waits on its init, and the init's own start (fork, exec,
// the Go runtime, its package inits: 6–8 ms here) is the longest part of
// that wait. By the time the runtime's Create runs, this process has spent
// ≈ 15 ms initialising its packages, most of them for the CLI, the daemon
// and the builder, which a create never uses. So package spawn/early, which
// cmd/berth imports and Go initialises ≈ 5–7 ms after exec (this package's
// comment says why), calls StartEarly, which starts the init when the
// arguments name a create or run, on a goroutine of its own beside the
// rest of the initialisation; Create takes it (launch.TakeEarly).
//
// Nothing depends on the order beyond speed. Without an early spare,
// Create starts one as before; none is started when the init is not
// installed yet (the create installs it, initbin.Install) or cannot be mounted read-only (launch
// falls back to a sealed copy). What the early spare is and can reach is
// what an eager one is (Start): it is started with the init binary and
// state root the arguments name, and exits when this process ends without
// taking it (its socket closes).
var early struct {
	root string        // the state root it is started for
	done chan struct{} // closed once it is set (or failed); nil if none was started
	e    Early
	ok   bool
}

// Early is an early spare: its pid, this process's end of its sync
// socket, and the init binary's read-only mount (DetachedReadOnly), open,
// with the path it was made from.
type Early struct {
	Pid, Sock int
	Exe       int
	ExePath   string
}

// StartEarly starts the early spare if args, this process's command line,
// are a runtime create or run. Call it once, as the process starts.
func StartEarly(args []string) {
	root, ok := EarlyCreate(args)
	if !ok {
		return
	}
	early.root, early.done = root, make(chan struct{})
	go func() {
		defer close(early.done)
		file, ok := installedInit(root + "/@init")
		if !ok {
			return
		}
		exe, err := DetachedReadOnly(file)
		if err != nil {
			return
		}
		pid, sock, err := Start(exe, DefaultArgs, "eager")
		if err != nil {
			syscall.Close(exe)
			return
		}
		early.e, early.ok = Early{Pid: pid, Sock: sock, Exe: exe, ExePath: file}, true
	}()
}

// EarlyRoot is the state root an early spare was started for, if one was.
func EarlyRoot() (root string, ok bool) { return early.root, early.done != nil }

// TakeEarly hands over the early spare once its start is done; false if
// none was started or its start failed. It hands it over once: call it
// from one goroutine.
func TakeEarly() (Early, bool) {
	if early.done == nil {
		return Early{}, false
	}
	<-early.done
	e, ok := early.e, early.ok
	early.e, early.ok = Early{}, false
	return e, ok
}

// installedInit is the path of the embedded init installed in dir, if it
// is there whole (as package initbin installs it): a berth without one
// execs itself as `berth init`.
func installedInit(dir string) (string, bool) {
	if blob.Init == "" {
		return "/proc/self/exe", true
	}
	file, whole := blob.Installed(dir, "berth-init", blob.InitID, len(blob.Init))
	return file, whole
}

// EarlyCreate reports whether args (a whole command line, program name
// first) are a runtime create or run: `berth runtime [flags] create|run …`
// or `berth-runc [flags] create|run …`. It returns the state root the
// flags name. Any flag but the runtime's global ones (runtimecli's
// NewCommand, which a test keeps in step) makes it answer no: it must never
// guess.
func EarlyCreate(args []string) (root string, ok bool) {
	switch {
	case len(args) > 0 && baseName(args[0]) == "berth-runc":
		args = args[1:]
	case len(args) > 1 && args[1] == "runtime":
		args = args[2:]
	default:
		return "", false
	}
	root = DefaultRoot
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		if a == "create" || a == "run" {
			return root, true
		}
		name, value, hasValue := cut(a, '=')
		switch name {
		case "--debug":
			if hasValue {
				return "", false
			}
		case "--root", "--log", "--log-format", "--rootless", "--criu":
			if !hasValue {
				if len(args) == 0 {
					return "", false
				}
				value, args = args[0], args[1:]
			}
			if name == "--root" {
				root = value
			}
		default:
			return "", false
		}
	}
	return "", false
}

// What follows stands in for strings and path, which Go initialises later.

func baseName(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p == "/" {
		return p
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
