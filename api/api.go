// Package api is berth's Engine API contract: the Docker Engine API versions
// berth serves. The wire types are those of github.com/moby/moby/api, so
// anything that speaks to Docker speaks to berth.
package api

import (
	"strconv"
	"strings"
)

const (
	// MaxVersion is the newest Engine API version berth serves, the one the
	// docker CLI 28 negotiates.
	MaxVersion = "1.50"
	// MinVersion is the oldest Engine API version berth accepts.
	MinVersion = "1.41"
	// DefaultSocket is where the daemon listens unless told otherwise.
	DefaultSocket = "/run/berth/berth.sock"
	// DefaultHost is DefaultSocket as a host URL, as -H takes it.
	DefaultHost = "unix://" + DefaultSocket
)

// CompareVersions compares two "major.minor" API versions: -1 if a < b, 0 if
// equal, 1 if a > b. A part that is not a number counts as 0.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}
