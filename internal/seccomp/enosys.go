package seccomp

import (
	"encoding/binary"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A syscall newer than every syscall a profile names is one the profile's
// author could not have meant to deny: it did not exist. Programs probe
// such syscalls and fall back to older ones when they get ENOSYS, but not
// on EPERM — the usual default action. runc therefore prepends to the
// filter a stub that answers ENOSYS for syscall numbers above the largest
// the filter knows, per architecture; berth does the same, which also
// covers the names libseccomp 2.5.4 is too old to know (they are skipped,
// so they count as unknown and get ENOSYS, as under runc).
//
// The stub, for each architecture of the filter (x32 shares x86_64's
// AUDIT_ARCH and is told apart by bit 30 of the number):
//
//	ld  [4]                        ; seccomp_data.arch
//	jne AUDIT_ARCH_<a>, next
//	ld  [0]                        ; seccomp_data.nr
//	(x86_64 only) jge 0x40000000, x32
//	jgt <largest known nr>, enosys, filter
//	x32: jgt <largest x32 nr>, enosys, filter
//	next: ...
//	ja  filter
//	enosys: ret SECCOMP_RET_ERRNO|ENOSYS
//	filter: <libseccomp's program>

// auditArches maps the architectures the stub handles to AUDIT_ARCH_*.
// Architectures missing here get no stub (the filter is unchanged for
// them).
var auditArches = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchAMD64:   unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX86:     unix.AUDIT_ARCH_I386,
	libseccomp.ArchARM64:   unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchARM:     unix.AUDIT_ARCH_ARM,
	libseccomp.ArchRISCV64: unix.AUDIT_ARCH_RISCV64,
	libseccomp.ArchS390X:   unix.AUDIT_ARCH_S390X,
	libseccomp.ArchPPC64LE: unix.AUDIT_ARCH_PPC64LE,
}

const x32Bit = 0x40000000

// bpfInsn is a classic BPF instruction (struct sock_filter).
type bpfInsn struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// needsENOSYSStub: a filter that allows what it does not list has no need.
func needsENOSYSStub(p *Plan) bool {
	switch p.Default.Kind {
	case specs.ActAllow, specs.ActLog:
		return false
	case specs.ActErrno:
		return p.Default.Errno != uint(unix.ENOSYS)
	}
	return true
}

// filterArches lists the architectures the filter is built for: the
// native one (libseccomp always adds it) and the plan's.
func filterArches(p *Plan) []libseccomp.ScmpArch {
	native, err := libseccomp.GetNativeArch()
	var out []libseccomp.ScmpArch
	if err == nil {
		out = append(out, native)
	}
	for _, a := range p.Arches {
		if sa, err := libseccomp.GetArchFromString(archNames[a]); err == nil && !slices.Contains(out, sa) {
			out = append(out, sa)
		}
	}
	return out
}

// largestKnown returns, per architecture of the filter, the largest
// syscall number p names that libseccomp resolves on it (pseudo-syscalls,
// which are negative, do not count).
func largestKnown(p *Plan, arches []libseccomp.ScmpArch) map[libseccomp.ScmpArch]uint32 {
	max := map[libseccomp.ScmpArch]uint32{}
	for _, r := range p.Rules {
		for _, name := range r.Names {
			for _, a := range arches {
				n, err := libseccomp.GetSyscallFromNameByArch(name, a)
				if err != nil || int32(n) < 0 {
					continue
				}
				if uint32(n) > max[a] {
					max[a] = uint32(n)
				}
			}
		}
	}
	return max
}

// enosysStub builds the stub for the filter's architectures. It returns
// nil when there is nothing to add.
func enosysStub(p *Plan) []bpfInsn {
	if !needsENOSYSStub(p) {
		return nil
	}
	arches := filterArches(p)
	known := largestKnown(p, arches)
	hasX32 := slices.Contains(arches, libseccomp.ArchX32)

	// Emit with symbolic targets: -1 = the ENOSYS return, -2 = the filter,
	// -3 = the next architecture's section; resolve after.
	const toENOSYS, toFilter, toNext = -1, -2, -3
	type insn struct {
		bpfInsn
		jt, jf int // symbolic or absolute targets for conditional jumps
	}
	var prog []insn
	var sectionEnds []int // index after each section
	emit := func(code uint16, k uint32, jt, jf int) { prog = append(prog, insn{bpfInsn{Code: code, K: k}, jt, jf}) }
	const (
		ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgtK = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jgeK = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ja   = unix.BPF_JMP | unix.BPF_JA
		retK = unix.BPF_RET | unix.BPF_K
	)
	found := false
	for _, a := range arches {
		audit, ok := auditArches[a]
		if !ok || known[a] == 0 {
			continue
		}
		found = true
		start := len(prog)
		emit(ldW, 4, 0, 0)                 // arch
		emit(jeqK, audit, start+2, toNext) // ours, or the next section
		emit(ldW, 0, 0, 0)                 // nr
		if a == libseccomp.ArchAMD64 {
			if hasX32 && known[libseccomp.ArchX32] != 0 {
				x32 := len(prog) + 2
				emit(jgeK, x32Bit, x32, len(prog)+1)
				emit(jgtK, known[a], toENOSYS, toFilter)
				emit(jgtK, known[libseccomp.ArchX32], toENOSYS, toFilter)
			} else {
				// Without x32 in the filter, libseccomp's program deals
				// with x32 numbers (bad architecture): leave them to it.
				emit(jgeK, x32Bit, toFilter, len(prog)+1)
				emit(jgtK, known[a], toENOSYS, toFilter)
			}
		} else {
			emit(jgtK, known[a], toENOSYS, toFilter)
		}
		sectionEnds = append(sectionEnds, len(prog))
	}
	if !found {
		return nil
	}
	jaIdx := len(prog)
	emit(ja, 0, 0, 0) // to the filter
	enosysIdx := len(prog)
	emit(retK, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS), 0, 0)
	filterIdx := len(prog)
	prog[jaIdx].K = uint32(filterIdx - jaIdx - 1)

	resolve := func(i, target int) uint8 {
		switch target {
		case toENOSYS:
			target = enosysIdx
		case toFilter:
			target = filterIdx
		case toNext:
			for _, end := range sectionEnds {
				if end > i {
					target = end
					break
				}
			}
		}
		return uint8(target - i - 1) // the stub is far shorter than 255 instructions
	}
	out := make([]bpfInsn, len(prog))
	for i, in := range prog {
		out[i] = in.bpfInsn
		if in.Code&0x07 == unix.BPF_JMP && in.Code != ja {
			out[i].Jt = resolve(i, in.jt)
			out[i].Jf = resolve(i, in.jf)
		}
	}
	return out
}

// prependStub returns filter (sock_filter array bytes) with the stub in
// front. Jumps in filter are relative, so it needs no change.
func prependStub(stub []bpfInsn, filter []byte) []byte {
	if len(stub) == 0 {
		return filter
	}
	out := make([]byte, 0, 8*len(stub)+len(filter))
	for _, in := range stub {
		out = binary.NativeEndian.AppendUint16(out, in.Code)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return append(out, filter...)
}
