package launch

import (
	"os"
	"path"
	"strings"

	"github.com/berth/berth/internal/ociruntime/initbin"
)

// DefaultRoot is the runtime's state root unless --root (Runtime.Root) says.
const DefaultRoot = "/run/berth/runtime"

// An early spare: a `berth runtime create` or `run` is a fresh process
// whose container waits on its init, and the init's own start (exec, the
// Go runtime, its package inits: ≈ 5 ms here) is the longest part of that
// wait. The runtime's Create starts it first thing (EagerInit), but by then
// this process has itself spent ≈ 10 ms initialising its packages, most of
// them for the CLI, the daemon and the builder, which a create never uses.
// So this package, which Go initialises among the first (it imports little),
// starts the init during package initialisation, when the arguments name a
// create or run, and Create takes it (TakeEarly). Nothing depends on the
// order beyond speed: without the early spare, Create starts one as before.
// What the early spare is and can reach is what an eager one is (StartSpare):
// it is started with the init binary and state root the arguments name, and
// exits when this process ends without taking it (its socket closes).
//
// The start (socketpair, the binary's mount, fork and exec: 1.5–3 ms) runs
// on a goroutine of its own, beside the rest of the initialisation.
var early struct {
	root string        // the state root it is started for
	done chan struct{} // closed once sp is set (or the start failed); nil if none was started
	sp   *Spare
}

func init() {
	root, ok := EarlyCreate(os.Args)
	if !ok {
		return
	}
	early.root, early.done = root, make(chan struct{})
	go func() {
		defer close(early.done)
		file, err := initbin.Install(path.Join(root, "@init"))
		if err != nil {
			return // Create reports it, starting its own init
		}
		if file == "" {
			file = "/proc/self/exe" // no embedded init: berth itself, as `berth init`
		}
		if sp, err := StartSpare(file, nil, false); err == nil {
			early.sp = sp
		}
	}()
}

// TakeEarly hands over the spare started as this process started, once
// its start is done, if it was started for the state root root (with the
// embedded init and the default arguments); nil otherwise. It hands it
// over once: call it from one goroutine.
func TakeEarly(root string) *Spare {
	if early.done == nil || path.Clean(early.root) != path.Clean(root) {
		return nil
	}
	<-early.done
	sp := early.sp
	early.sp = nil
	return sp
}

// EarlyCreate reports whether args (a whole command line, program name
// first) are a runtime create or run: `berth runtime [flags] create|run …`
// or `berth-runc [flags] create|run …`. It returns the state root the
// flags name. Any flag but the runtime's global ones (runtimecli's
// NewCommand, which a test keeps in step) makes it answer no: it must never
// guess.
func EarlyCreate(args []string) (root string, ok bool) {
	switch {
	case len(args) > 0 && path.Base(args[0]) == "berth-runc":
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
		name, value, hasValue := strings.Cut(a, "=")
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
