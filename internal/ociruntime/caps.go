package ociruntime

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// capMask turns capability names into a bit mask (names above lastCap,
// unknown to this kernel, are skipped like runc does).
func capMask(names []string, lastCap int) uint64 {
	var m uint64
	for _, n := range names {
		if c, ok := capNames[strings.ToUpper(n)]; ok && c <= lastCap {
			m |= 1 << uint(c)
		}
	}
	return m
}

// applyUser switches the calling thread (the one that will exec) to the
// process's user and groups and sets its capability sets. Creds and
// capabilities are per thread in Linux; raw syscalls keep them to this one.
func applyUser(p *specs.Process, lastCap int) error {
	caps := p.Capabilities
	if caps != nil {
		bounding := capMask(caps.Bounding, lastCap)
		for c := 0; c <= lastCap; c++ {
			if bounding&(1<<uint(c)) == 0 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return fmt.Errorf("process.capabilities.bounding: drop %d: %w", c, err)
				}
			}
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	groups := make([]uint32, 0, len(p.User.AdditionalGids))
	groups = append(groups, p.User.AdditionalGids...)
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		if !(e == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("process.user.additionalGids: setgroups: %w", e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(p.User.GID), uintptr(p.User.GID), uintptr(p.User.GID)); e != 0 {
		return fmt.Errorf("process.user.gid %d: %w", p.User.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(p.User.UID), uintptr(p.User.UID), uintptr(p.User.UID)); e != 0 {
		return fmt.Errorf("process.user.uid %d: %w", p.User.UID, e)
	}
	if caps == nil {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return err
	}
	eff, perm, inh := capMask(caps.Effective, lastCap), capMask(caps.Permitted, lastCap), capMask(caps.Inheritable, lastCap)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	// What this thread holds now: a set may only shrink.
	var cur [2]unix.CapUserData
	curHdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&curHdr, &cur[0]); err != nil {
		return fmt.Errorf("process.capabilities: capget: %w", err)
	}
	held := uint64(cur[0].Permitted) | uint64(cur[1].Permitted)<<32
	if missing := (perm | eff | inh) &^ held; missing != 0 {
		return errdefs.Forbidden(fmt.Errorf("process.capabilities: %s asked for, but the runtime does not hold it (the host's bounding set lacks it)",
			strings.Join(capList(missing), ", ")))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("process.capabilities: capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	amb := capMask(caps.Ambient, lastCap)
	for c := 0; c <= lastCap; c++ {
		if amb&(1<<uint(c)) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return fmt.Errorf("process.capabilities.ambient: raise %s (it must be permitted and inheritable): %w", capName(c), err)
			}
		}
	}
	return nil
}

// capName is the name of capability number c ("CAP_SYS_RESOURCE").
func capName(c int) string {
	for n, v := range capNames {
		if v == c {
			return n
		}
	}
	return fmt.Sprintf("capability %d", c)
}

// capList names the capabilities of a mask, in number order.
func capList(m uint64) []string {
	var out []string
	for c := 0; c < 64; c++ {
		if m&(1<<uint(c)) != 0 {
			out = append(out, capName(c))
		}
	}
	return out
}
