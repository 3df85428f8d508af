package main

import (
	"runtime"

	"github.com/berth/berth/internal/ociruntime"
)

// The main goroutine keeps the main thread for the life of the process.
//
// `berth init` works on the main thread, as berth-init does (see there).
// Everywhere else it is about the other goroutines: the runtime starts a
// container's processes from a locked thread that has joined the
// container's namespaces, and that thread ends with its goroutine. Go
// cannot end the main thread; it parks it instead, still in the
// container's mount and network namespaces. /proc/self is the main
// thread's view, so from then on it would show the container's mounts
// (a daemon deciding whether a directory holds a mount would look at the
// wrong table) and its network namespace as the host's. Holding the main
// thread here, no other goroutine ever runs on it.
func init() { runtime.LockOSThread() }

// runInit is `berth init`, the container init the runtime re-execs. It is
// dispatched before anything else is built: it never returns.
func runInit() { ociruntime.InitMain() }
