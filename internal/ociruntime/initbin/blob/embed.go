//go:build embedinit

package blob

import _ "embed"

// The programs and their ids are written by `make build` (not committed).
var (
	//go:embed berth-init
	Init string
	//go:embed berth-init.id
	InitID string
	//go:embed berth-nsenter
	Nsenter string
	//go:embed berth-nsenter.id
	NsenterID string
)
