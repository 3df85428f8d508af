// Package version holds what this build of berth is: its version and commit,
// set at link time by the Makefile.
package version

import "runtime/debug"

// Version and Commit are set with -ldflags "-X ...". A plain `go build`
// leaves Version at its default and Commit read from the build info.
var (
	Version = "0.1.0-dev"
	Commit  = ""
)

// GitCommit returns Commit, or the VCS revision Go recorded, or "unknown".
func GitCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "unknown"
}
