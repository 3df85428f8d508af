// Package bpf is a compiled seccomp filter and its loader: plain data the
// runtime's parent compiles (package seccomp, with libseccomp) and the
// container's init installs with one seccomp(2) call. It does not link
// libseccomp, so the static init (cmd/berth-init) carries it.
package bpf

import (
	"fmt"
	"runtime"
	"unsafe"

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

// Load installs p for the calling OS thread, with the same preconditions
// as seccomp.Load: thread locked, no_new_privs set (or
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
