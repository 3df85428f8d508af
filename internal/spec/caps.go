package spec

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultCaps is Docker's default capability set, in Docker's order.
var defaultCaps = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// allCaps is every capability Linux knows, in number order (0..40).
var allCaps = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

const allCapsKeyword = "ALL"

// normalizeCaps upper-cases names, adds the CAP_ prefix and checks each is
// a capability Linux knows. field names the option for error messages.
func normalizeCaps(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		n := strings.ToUpper(strings.TrimSpace(c))
		if n == allCapsKeyword {
			out = append(out, n)
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !slices.Contains(allCaps, n) {
			return nil, errdefs.Invalidf("invalid %s: unknown capability: %q", field, c)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// capabilities computes the container's capability set from Docker's
// defaults and --cap-add/--cap-drop, as Docker does: adding ALL keeps
// everything but the drops; dropping ALL keeps only the adds; otherwise the
// defaults minus the drops plus the adds.
func capabilities(privileged bool, capAdd, capDrop, hostCaps []string) (*specs.LinuxCapabilities, error) {
	add, err := normalizeCaps("CapAdd", capAdd)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps("CapDrop", capDrop)
	if err != nil {
		return nil, err
	}
	all := allCaps
	if hostCaps != nil {
		all = nil
		for _, c := range allCaps {
			if slices.Contains(hostCaps, c) {
				all = append(all, c)
			}
		}
	}
	var caps []string
	switch {
	case privileged:
		caps = slices.Clone(all)
	case slices.Contains(add, allCapsKeyword):
		for _, c := range all {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, allCapsKeyword):
		caps = add
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range add {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	if caps == nil {
		caps = []string{}
	}
	// Inheritable and ambient stay empty (CVE-2022-24769): a file with
	// inheritable capabilities must not gain them across execve.
	return &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
	}, nil
}

// HostCapabilities reads the capabilities in this process's bounding set
// (CapBnd in /proc/self/status), by name: what a container can be given.
func HostCapabilities() ([]string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("CapBnd %q: %w", hex, err)
		}
		var out []string
		for i, c := range allCaps {
			if mask&(1<<uint(i)) != 0 {
				out = append(out, c)
			}
		}
		return out, nil
	}
	return nil, errors.New("no CapBnd in /proc/self/status")
}
