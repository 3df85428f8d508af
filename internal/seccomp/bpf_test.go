package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data, what a filter reads.
type seccompData struct {
	nr   int32
	arch uint32
	args [6]uint64
}

func (d seccompData) word(off uint32) (uint32, error) {
	switch {
	case off == 0:
		return uint32(d.nr), nil
	case off == 4:
		return d.arch, nil
	case off == 8 || off == 12:
		return 0, nil // instruction pointer
	case off >= 16 && off < 64 && off%4 == 0:
		a := d.args[(off-16)/8]
		if (off-16)%8 == 0 {
			return uint32(a), nil // little endian: low word first
		}
		return uint32(a >> 32), nil
	}
	return 0, fmt.Errorf("load at offset %d", off)
}

// runBPF interprets a seccomp classic-BPF program (as the kernel would,
// for the instructions seccomp filters use) and returns its verdict. It
// lets the tests check what a filter does for architectures this machine
// cannot run (i386, x32) and for syscalls it would be unsafe to make.
func runBPF(prog []byte, d seccompData) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	n := len(prog) / 8
	for pc := 0; pc < n; pc++ {
		ins := prog[8*pc:]
		code := binary.NativeEndian.Uint16(ins)
		jt, jf := int(ins[2]), int(ins[3])
		k := binary.NativeEndian.Uint32(ins[4:])
		src := k
		if code&unix.BPF_X != 0 {
			src = x
		}
		switch code & 0x07 {
		case unix.BPF_LD:
			switch code {
			case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
				v, err := d.word(k)
				if err != nil {
					return 0, fmt.Errorf("pc %d: %w", pc, err)
				}
				a = v
			case unix.BPF_LD | unix.BPF_IMM:
				a = k
			case unix.BPF_LD | unix.BPF_MEM:
				a = mem[k&15]
			default:
				return 0, fmt.Errorf("pc %d: ld %#x", pc, code)
			}
		case unix.BPF_LDX:
			switch code {
			case unix.BPF_LDX | unix.BPF_IMM:
				x = k
			case unix.BPF_LDX | unix.BPF_MEM:
				x = mem[k&15]
			default:
				return 0, fmt.Errorf("pc %d: ldx %#x", pc, code)
			}
		case unix.BPF_ST:
			mem[k&15] = a
		case unix.BPF_STX:
			mem[k&15] = x
		case unix.BPF_ALU:
			switch code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src
			case unix.BPF_RSH:
				a >>= src
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: alu %#x", pc, code)
			}
		case unix.BPF_JMP:
			var cond bool
			switch code & 0xf0 {
			case unix.BPF_JA:
				pc += int(k)
				continue
			case unix.BPF_JEQ:
				cond = a == src
			case unix.BPF_JGT:
				cond = a > src
			case unix.BPF_JGE:
				cond = a >= src
			case unix.BPF_JSET:
				cond = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: jmp %#x", pc, code)
			}
			if cond {
				pc += jt
			} else {
				pc += jf
			}
		case unix.BPF_RET:
			if code&0x18 == unix.BPF_A {
				return a, nil
			}
			return k, nil
		case unix.BPF_MISC:
			if code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		}
	}
	return 0, fmt.Errorf("program fell off its end")
}

func verdict(v uint32) string {
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	case unix.SECCOMP_RET_ERRNO:
		return unix.ErrnoName(unix.Errno(v & unix.SECCOMP_RET_DATA))
	case unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_KILL_PROCESS:
		return "kill"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_LOG:
		return "log"
	}
	return fmt.Sprintf("%#x", v)
}

// TestDockerDefaultEveryArch runs Docker's default profile, as compiled,
// for the three x86 ABIs one filter must cover: the x32 and i386 entry
// points are the classic ways around a filter written for x86_64 only.
func TestDockerDefaultEveryArch(t *testing.T) {
	prog, err := Export(dockerDefault(t))
	if err != nil {
		t.Fatal(err)
	}
	const x32 = 0x40000000
	tests := []struct {
		name string
		d    seccompData
		want string
	}{
		{"x86_64 read", seccompData{nr: 0, arch: unix.AUDIT_ARCH_X86_64}, "allow"},
		{"x86_64 keyctl", seccompData{nr: 250, arch: unix.AUDIT_ARCH_X86_64}, "EPERM"},
		{"x86_64 kexec_load", seccompData{nr: 246, arch: unix.AUDIT_ARCH_X86_64}, "EPERM"},
		{"x86_64 personality(0)", seccompData{nr: 135, arch: unix.AUDIT_ARCH_X86_64}, "allow"},
		{"x86_64 personality(ADDR_NO_RANDOMIZE)", seccompData{nr: 135, arch: unix.AUDIT_ARCH_X86_64, args: [6]uint64{0x40000}}, "EPERM"},
		{"x86_64 clone3", seccompData{nr: 435, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"}, // Docker: so glibc falls back to clone
		{"x86_64 statmount (newer than libseccomp)", seccompData{nr: 457, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"},
		{"x86_64 999", seccompData{nr: 999, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"},
		{"x32 read", seccompData{nr: x32, arch: unix.AUDIT_ARCH_X86_64}, "allow"},
		{"x32 keyctl", seccompData{nr: x32 | 250, arch: unix.AUDIT_ARCH_X86_64}, "EPERM"},
		{"x32 999", seccompData{nr: x32 | 999, arch: unix.AUDIT_ARCH_X86_64}, "ENOSYS"},
		{"i386 read", seccompData{nr: 3, arch: unix.AUDIT_ARCH_I386}, "allow"},
		{"i386 keyctl", seccompData{nr: 288, arch: unix.AUDIT_ARCH_I386}, "EPERM"},
		{"i386 kexec_load", seccompData{nr: 283, arch: unix.AUDIT_ARCH_I386}, "EPERM"},
		{"i386 999", seccompData{nr: 999, arch: unix.AUDIT_ARCH_I386}, "ENOSYS"},
		{"arm64 (not in the filter)", seccompData{nr: 63, arch: unix.AUDIT_ARCH_AARCH64}, "kill"},
	}
	for _, tt := range tests {
		v, err := runBPF(prog, tt.d)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := verdict(v); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// FuzzDockerDefaultVerdicts: every input gets a verdict (the program
// never runs off its end or reads outside seccomp_data).
func FuzzDockerDefaultVerdicts(f *testing.F) {
	prog, err := Export(dockerDefault(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(int32(0), uint32(unix.AUDIT_ARCH_X86_64), uint64(0), uint64(0))
	f.Add(int32(135), uint32(unix.AUDIT_ARCH_I386), uint64(0x40000), uint64(1))
	f.Fuzz(func(t *testing.T, nr int32, arch uint32, a0, a1 uint64) {
		if _, err := runBPF(prog, seccompData{nr: nr, arch: arch, args: [6]uint64{a0, a1}}); err != nil {
			t.Fatal(err)
		}
	})
}
