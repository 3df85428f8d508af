//go:build !embedinit

package blob

// A berth built without the embedinit tag carries no program.
var Init, InitID, Nsenter, NsenterID string
