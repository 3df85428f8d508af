package seccomp

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/seccomp/bpf"
)

// Program is a compiled filter (package bpf: the init loads it without
// linking libseccomp).
type Program = bpf.Program

// Compile validates cfg and compiles it into a Program. Results are
// cached by the profile's content, so a second container with the same
// profile costs a hash. A nil cfg gives a nil Program. The returned
// Program is shared: callers must not modify it.
func Compile(cfg *specs.LinuxSeccomp) (*Program, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, errdefs.Invalidf("linux.seccomp: %w", err)
	}
	key := sha256.Sum256(b)
	cache.mu.Lock()
	p, ok := cache.progs[key]
	cache.mu.Unlock()
	if ok {
		return p, nil
	}
	plan, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	filter, err := exportPlan(plan)
	if err != nil {
		return nil, err
	}
	compiles.Add(1)
	p = &Program{Filter: filter, Flags: loadFlags(plan)}
	cache.mu.Lock()
	if len(cache.progs) >= maxCached {
		clear(cache.progs) // profiles are few; a full cache is a pathological caller
	}
	cache.progs[key] = p
	cache.mu.Unlock()
	return p, nil
}

const maxCached = 64

// compiles counts cache misses (tests watch it).
var compiles atomic.Int64

var cache = struct {
	mu sync.Mutex // guards progs
	// progs maps the SHA-256 of a LinuxSeccomp's JSON to its Program.
	progs map[[32]byte]*Program
}{progs: map[[32]byte]*Program{}}

func loadFlags(p *Plan) uint {
	var fl uint
	for _, f := range p.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			fl |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			fl |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		}
		// TSYNC: not needed (see flags); WAIT_KILLABLE_RECV only matters
		// with a listener, which berth does not do yet.
	}
	return fl
}
