// Package early starts the early spare of a `berth runtime create` or
// `run` (spawn.StartEarly) as the binary initialises. Import it, for its
// effect only, from cmd/berth: a process that never runs the runtime's
// command line (the static init, a test) leaves it out and does not read
// its command line for nothing. It imports only what Go initialises first.
package early

import (
	"github.com/berth/berth/internal/ociruntime/spawn"
	"github.com/berth/berth/internal/rawproc"
)

func init() { spawn.StartEarly(rawproc.Args()) }
