//go:build cgo

package ociruntime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/seccomp"
)

func init() {
	compileSeccomp = func(cfg *specs.LinuxSeccomp, cacheDir string) (*seccompProgram, error) {
		if cacheDir != "" {
			return seccomp.CompileCached(cfg, cacheDir)
		}
		return seccomp.Compile(cfg)
	}
	seccompEnabled = true
}
