package seccomp

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// Program is a compiled filter, ready to load: what Load installs, split
// from the expensive part so that it can be computed once. libseccomp
// takes about 10 ms to generate the BPF of Docker's default profile (three
// architectures), so the daemon compiles each distinct profile once
// (Compile caches), hands the Program to the container's init (it is
// plain data and marshals to JSON), and the init loads it with one
// seccomp(2) call.
type Program struct {
	// Filter is the array of struct sock_filter, in host byte order.
	Filter []byte `json:"filter"`
	// Flags are the SECCOMP_FILTER_FLAG_* bits passed to seccomp(2).
	Flags uint `json:"flags,omitempty"`
}

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

// Load installs p for the calling OS thread, with the same preconditions
// as the package-level Load: thread locked, no_new_privs set (or
// CAP_SYS_ADMIN held). It makes no allocation-heavy calls and does not
// need libseccomp. A nil Program loads nothing.
func (p *Program) Load() error {
	if p == nil {
		return nil
	}
	const insnSize = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(p.Filter) == 0 || len(p.Filter)%insnSize != 0 || len(p.Filter)/insnSize > 0xffff {
		return errdefs.Invalidf("seccomp: program of %d bytes is not an array of sock_filter", len(p.Filter))
	}
	prog := unix.SockFprog{
		Len:    uint16(len(p.Filter) / insnSize),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&p.Filter[0])),
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(p)
	if errno != 0 {
		if errno == unix.EACCES {
			return fmt.Errorf("linux.seccomp: load filter: %w (no_new_privs is not set and the caller lacks CAP_SYS_ADMIN)", errno)
		}
		return fmt.Errorf("linux.seccomp: load filter: %w", errno)
	}
	return nil
}
