//go:build embedinit

package initbin

import (
	_ "embed"

	"github.com/berth/berth/internal/embedmem"
)

// The programs and their ids are written by `make build` (not committed).
var (
	//go:embed berth-init
	embeddedInit string
	//go:embed berth-init.id
	embeddedInitID string
	//go:embed berth-nsenter
	embeddedNsenter string
	//go:embed berth-nsenter.id
	embeddedNsenterID string
)

func init() {
	initProgram.bytes, initProgram.id = embeddedInit, embeddedInitID
	nsenterProgram.bytes, nsenterProgram.id = embeddedNsenter, embeddedNsenterID
	embedmem.Register(embeddedInit)
	embedmem.Register(embeddedNsenter)
}
