//go:build embedinit

package initbin

import _ "embed"

// The programs and their ids are written by `make build` (not committed).
var (
	//go:embed berth-init
	embeddedInit []byte
	//go:embed berth-init.id
	embeddedInitID []byte
	//go:embed berth-nsenter
	embeddedNsenter []byte
	//go:embed berth-nsenter.id
	embeddedNsenterID []byte
)

func init() {
	initProgram.bytes, initProgram.id = embeddedInit, embeddedInitID
	nsenterProgram.bytes, nsenterProgram.id = embeddedNsenter, embeddedNsenterID
}
