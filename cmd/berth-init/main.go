// Command berth-init is the container init alone: `berth init` without the
// rest of berth. It is built static and small, and embedded in berth
// (internal/ociruntime/initbin), because the init is exec'd once per
// container and a smaller program starts faster: docs/decisions/0090.
package main

import (
	"runtime"

	"github.com/berth/berth/internal/ociruntime"
)

// The init works on the main thread: locked during the package
// initialisers, main runs there (a spare init's namespaces are changed per
// thread, and /proc/self is the main thread's view).
func init() { runtime.LockOSThread() }

func main() { ociruntime.InitMain() }
