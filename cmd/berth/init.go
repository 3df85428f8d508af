package main

import "github.com/berth/berth/internal/ociruntime"

// runInit is `berth init`, the container init the runtime re-execs. It is
// dispatched before anything else is built: it never returns.
func runInit() { ociruntime.InitMain() }
