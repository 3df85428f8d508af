//go:build cgo

package ociruntime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/seccomp"
)

func init() {
	compileSeccomp = func(cfg *specs.LinuxSeccomp, cacheDir string) (*seccompProgram, error) {
		var (
			p   *seccomp.Program
			err error
		)
		if cacheDir != "" {
			p, err = seccomp.CompileCached(cfg, cacheDir)
		} else {
			p, err = seccomp.Compile(cfg)
		}
		if err != nil || p == nil {
			return nil, err
		}
		return &seccompProgram{Filter: p.Filter, Flags: p.Flags}, nil
	}
	loadSeccomp = func(p *seccompProgram) error {
		return (&seccomp.Program{Filter: p.Filter, Flags: p.Flags}).Load()
	}
	seccompEnabled = true
}
