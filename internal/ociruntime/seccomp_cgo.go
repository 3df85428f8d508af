//go:build cgo

package ociruntime

import "github.com/berth/berth/internal/seccomp"

func init() {
	loadSeccomp = seccomp.Load
	seccompEnabled = true
}
