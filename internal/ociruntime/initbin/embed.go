//go:build embedinit

package initbin

import _ "embed"

// berth-init and berth-init.id are written by `make build` (not committed).
var (
	//go:embed berth-init
	embeddedProgram []byte
	//go:embed berth-init.id
	embeddedID []byte
)

func init() { program, id = embeddedProgram, embeddedID }
