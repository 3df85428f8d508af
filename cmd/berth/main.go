// Command berth is the whole engine in one binary: the Docker-compatible CLI,
// the daemon (`berth daemon`), and, as the runtime and init land, the OCI
// runtime (`berth runtime`) and the container init (`berth init`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth/berth/internal/cli"
	_ "github.com/berth/berth/internal/ociruntime/spawn/early" // the early spare of a runtime create or run
	_ "github.com/berth/berth/internal/prefault"               // maps the heap and code in as the process starts
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runInit()
	}
	if code, ok := runtimeMain(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := cli.NewCommandFor(os.Args[1:],
		cli.Command{Name: "daemon", Make: newDaemonCommand},
		cli.Command{Name: "runtime", Make: newRuntimeCommand},
		cli.Command{Name: "monitor", Make: newMonitorCommand})
	code := cli.Execute(ctx, root)
	stop()
	os.Exit(code)
}
