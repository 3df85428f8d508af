package seccomp

import (
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Features describes what Load accepts, for `berth runtime features`
// (the runtime-spec features document).
func Features() *features.Seccomp {
	enabled := Supported()
	f := &features.Seccomp{Enabled: &enabled}
	for a := range actions {
		if a != "SCMP_ACT_NOTIFY" { // refused: not implemented
			f.Actions = append(f.Actions, string(a))
		}
	}
	for op := range operators {
		f.Operators = append(f.Operators, string(op))
	}
	for a := range archNames {
		f.Archs = append(f.Archs, string(a))
	}
	for fl := range flags {
		f.KnownFlags = append(f.KnownFlags, string(fl))
	}
	for _, s := range [][]string{f.Actions, f.Operators, f.Archs, f.KnownFlags} {
		slices.Sort(s)
	}
	for _, fl := range f.KnownFlags {
		switch fl {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			f.SupportedFlags = append(f.SupportedFlags, fl) // accepted; see flags
		case "SECCOMP_FILTER_FLAG_LOG":
			if kernelHasFlag(unix.SECCOMP_FILTER_FLAG_LOG) {
				f.SupportedFlags = append(f.SupportedFlags, fl)
			}
		case "SECCOMP_FILTER_FLAG_SPEC_ALLOW":
			if kernelHasFlag(unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
				f.SupportedFlags = append(f.SupportedFlags, fl)
			}
		}
		// WAIT_KILLABLE_RECV needs libseccomp >= 2.6 (and a listener).
	}
	return f
}

// kernelHasFlag asks seccomp(2) about flag without installing anything: a
// NULL program fails with EFAULT when the flag is known, EINVAL when not.
func kernelHasFlag(flag uintptr) bool {
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flag, 0)
	return errno == unix.EFAULT
}
