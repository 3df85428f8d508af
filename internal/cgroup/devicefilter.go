package cgroup

// The cgroup v2 device controller has no files: access to device nodes is
// decided by an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached
// to the cgroup. This file compiles the spec's linux.resources.devices list
// into such a program (a pure function, tested with an interpreter in the
// tests) and attaches it with raw bpf(2) calls, replacing the program a
// previous Set attached.
//
// The program sees struct bpf_cgroup_dev_ctx { u32 access_type (access<<16 |
// type); u32 major; u32 minor; } in r1 and returns 1 (allow) or 0 (deny):
//
//	r2 = ctx->access_type & 0xffff   // BPF_DEVCG_DEV_BLOCK / _CHAR
//	r3 = ctx->access_type >> 16      // BPF_DEVCG_ACC_MKNOD|READ|WRITE
//	r4 = ctx->major; r5 = ctx->minor
//	for each rule, LAST first:       // the last matching rule wins
//	    if type/major/minor/access do not match: jump to the next block
//	    r0 = allow; exit
//	r0 = 0; exit                     // nothing matched: deny
//
// An allow rule matches when the access asked for is within the rule's
// ("rw" covers a read); a deny rule matches when they share any bit ("w"
// denies a read-write open). Unlike v1, several partial allow rules do not
// add up ("r" then "w" does not allow "rw"): spec generators do not write
// such lists.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// ebpfInsn is one eBPF instruction.
type ebpfInsn struct {
	Code uint8
	Dst  uint8 // register numbers
	Src  uint8
	Off  int16
	Imm  int32
}

// eBPF opcodes used by the device program.
const (
	opLdxW     = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W // dst = *(u32 *)(src + off)
	opAnd64K   = 0x07 | unix.BPF_AND | unix.BPF_K         // dst &= imm (BPF_ALU64)
	opRsh64K   = 0x07 | unix.BPF_RSH | unix.BPF_K         // dst >>= imm
	opMov64K   = 0x07 | 0xb0 | unix.BPF_K                 // dst = imm (BPF_MOV)
	opMov64X   = 0x07 | 0xb0 | unix.BPF_X                 // dst = src
	opJneK     = unix.BPF_JMP | 0x50 | unix.BPF_K         // if dst != imm: pc += off (BPF_JNE)
	opJeqK     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K // if dst == imm: pc += off
	opExit     = unix.BPF_JMP | 0x90                      // return r0 (BPF_EXIT)
	accessAll  = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE
	maxDevInsn = 4096 // BPF_MAXINSNS for unprivileged-size programs; ours are far smaller
)

// DeviceFilter compiles a linux.resources.devices list into the eBPF
// program that enforces it on cgroup v2. Rules are validated as on v1;
// errors name the field.
func DeviceFilter(rules []specs.LinuxDeviceCgroup) ([]ebpfInsn, error) {
	prog := []ebpfInsn{
		{Code: opLdxW, Dst: 2, Src: 1, Off: 0},
		{Code: opAnd64K, Dst: 2, Imm: 0xffff},
		{Code: opLdxW, Dst: 3, Src: 1, Off: 0},
		{Code: opRsh64K, Dst: 3, Imm: 16},
		{Code: opLdxW, Dst: 4, Src: 1, Off: 4},
		{Code: opLdxW, Dst: 5, Src: 1, Off: 8},
	}
	for i := len(rules) - 1; i >= 0; i-- {
		d := rules[i]
		if _, err := deviceRule(d); err != nil {
			return nil, errdefs.Invalidf("linux.resources.devices[%d]: %w", i, err)
		}
		var checks []ebpfInsn
		switch d.Type {
		case "b":
			checks = append(checks, ebpfInsn{Code: opJneK, Dst: 2, Imm: unix.BPF_DEVCG_DEV_BLOCK})
		case "c":
			checks = append(checks, ebpfInsn{Code: opJneK, Dst: 2, Imm: unix.BPF_DEVCG_DEV_CHAR})
		}
		if d.Type == "b" || d.Type == "c" {
			if d.Major != nil && *d.Major >= 0 {
				checks = append(checks, ebpfInsn{Code: opJneK, Dst: 4, Imm: int32(*d.Major)})
			}
			if d.Minor != nil && *d.Minor >= 0 {
				checks = append(checks, ebpfInsn{Code: opJneK, Dst: 5, Imm: int32(*d.Minor)})
			}
		}
		acc := accessBits(d.Access)
		if acc != accessAll {
			if d.Allow { // matches when nothing outside acc is asked for
				checks = append(checks,
					ebpfInsn{Code: opMov64X, Dst: 0, Src: 3},
					ebpfInsn{Code: opAnd64K, Dst: 0, Imm: int32(^acc & accessAll)},
					ebpfInsn{Code: opJneK, Dst: 0, Imm: 0})
			} else { // matches when any bit of acc is asked for
				checks = append(checks,
					ebpfInsn{Code: opMov64X, Dst: 0, Src: 3},
					ebpfInsn{Code: opAnd64K, Dst: 0, Imm: int32(acc)},
					ebpfInsn{Code: opJeqK, Dst: 0, Imm: 0})
			}
		}
		verdict := int32(0)
		if d.Allow {
			verdict = 1
		}
		block := append(checks, ebpfInsn{Code: opMov64K, Dst: 0, Imm: verdict}, ebpfInsn{Code: opExit})
		for k := range checks {
			if block[k].Code == opJneK || block[k].Code == opJeqK {
				block[k].Off = int16(len(block) - k - 1) // to the next block
			}
		}
		prog = append(prog, block...)
		if len(prog) > maxDevInsn {
			return nil, errdefs.Invalidf("linux.resources.devices: %d rules make a device filter longer than %d instructions", len(rules), maxDevInsn)
		}
		if len(checks) == 0 {
			// Matches everything: earlier rules can never apply, and the
			// verifier rejects unreachable instructions.
			return prog, nil
		}
	}
	return append(prog, ebpfInsn{Code: opMov64K, Dst: 0, Imm: 0}, ebpfInsn{Code: opExit}), nil
}

func accessBits(access string) int32 {
	if access == "" {
		return accessAll
	}
	var acc int32
	for _, c := range access {
		switch c {
		case 'm':
			acc |= unix.BPF_DEVCG_ACC_MKNOD
		case 'r':
			acc |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			acc |= unix.BPF_DEVCG_ACC_WRITE
		}
	}
	return acc
}

// encodeEBPF lays insns out as struct bpf_insn, in host byte order.
func encodeEBPF(insns []ebpfInsn) []byte {
	b := make([]byte, 0, 8*len(insns))
	for _, in := range insns {
		b = append(b, in.Code, in.Dst&0xf|in.Src<<4)
		b = binary.NativeEndian.AppendUint16(b, uint16(in.Off))
		b = binary.NativeEndian.AppendUint32(b, uint32(in.Imm))
	}
	return b
}

// AttachDeviceFilter compiles rules and attaches the program to the
// cgroup v2 directory dir, then detaches the device programs attached
// before (a previous Set), so exactly one is in force. The kernel drops
// the program with the cgroup.
func AttachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	insns, err := DeviceFilter(rules)
	if err != nil {
		return err
	}
	dirfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: device filter: open %s: %w", dir, err)
	}
	defer unix.Close(dirfd)
	old, err := queryDevicePrograms(dirfd)
	if err != nil {
		return fmt.Errorf("cgroup: device filter: query %s: %w", dir, err)
	}
	progfd, err := loadDeviceProgram(insns)
	if err != nil {
		return err
	}
	defer unix.Close(progfd)
	attach := bpfAttachAttr{targetFd: uint32(dirfd), attachBpfFd: uint32(progfd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("cgroup: device filter: attach to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		get := bpfGetFDByIDAttr{id: id}
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_GET_FD_BY_ID, uintptr(unsafe.Pointer(&get)), unsafe.Sizeof(get))
		if errno != 0 {
			if errno != unix.ENOENT { // gone meanwhile
				errs = append(errs, fmt.Errorf("cgroup: device filter: program %d: %w", id, errno))
			}
			continue
		}
		detach := bpfAttachAttr{targetFd: uint32(dirfd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		if err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup: device filter: detach old program %d from %s: %w", id, dir, err))
		}
		unix.Close(int(fd))
	}
	return errors.Join(errs...)
}

// DevicePrograms lists the ids of the device programs attached to the
// cgroup v2 directory dir.
func DevicePrograms(dir string) ([]uint32, error) {
	dirfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	return queryDevicePrograms(dirfd)
}

// The bpf(2) attribute layouts used here (prefixes of union bpf_attr).
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetFDByIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return errno
	}
	return nil
}

func loadDeviceProgram(insns []ebpfInsn) (int, error) {
	code := encodeEBPF(insns)
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 64<<10)
	attr := bpfProgLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(insns)),
		insns:              uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel:           1,
		logSize:            uint32(len(logBuf)),
		logBuf:             uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "berth_devices")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if errno != 0 {
		msg := string(logBuf)
		if i := bytes.IndexByte(logBuf, 0); i >= 0 {
			msg = string(logBuf[:i])
		}
		return -1, fmt.Errorf("cgroup: load device filter: %w (verifier: %s)", errno, msg)
	}
	return int(fd), nil
}

func queryDevicePrograms(dirfd int) ([]uint32, error) {
	q := bpfQueryAttr{targetFd: uint32(dirfd), attachType: unix.BPF_CGROUP_DEVICE}
	if err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q)); err != nil {
		return nil, err
	}
	if q.progCnt == 0 {
		return nil, nil
	}
	ids := make([]uint32, q.progCnt+8) // room for attachments racing in
	q = bpfQueryAttr{targetFd: uint32(dirfd), attachType: unix.BPF_CGROUP_DEVICE,
		progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:q.progCnt], nil
}
