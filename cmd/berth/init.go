package main

import (
	"os"
	"runtime"

	"github.com/berth/berth/internal/ociruntime"
)

// `berth init` works on the main thread, as berth-init does (see there).
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
}

// runInit is `berth init`, the container init the runtime re-execs. It is
// dispatched before anything else is built: it never returns.
func runInit() { ociruntime.InitMain() }
