package spec

import (
	"fmt"

	"github.com/berth/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompFor picks the container's seccomp filter: none when privileged or
// "seccomp=unconfined", a custom profile (security option, then Input), or
// Docker's default profile. Profiles are resolved against the container's
// bounding capabilities (CAP_SYS_ADMIN unlocks mount and friends, etc.).
// s.Process.Capabilities must be set.
func seccompFor(s *specs.Spec, in Input, host *container.HostConfig, sec securityOpts) (*specs.LinuxSeccomp, error) {
	profile := ""
	switch {
	case sec.seccompSet:
		profile = sec.seccomp
	case len(in.SeccompProfile) > 0:
		profile = string(in.SeccompProfile)
	}
	switch {
	case profile == "unconfined":
		return nil, nil
	case host.Privileged:
		return nil, nil // as Docker: privileged means unconfined
	case profile == "" || profile == "builtin":
		sc, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		return sc, nil
	}
	sc, err := seccomp.LoadProfile(profile, s)
	if err != nil {
		return nil, errdefs.Invalid(fmt.Errorf("invalid seccomp profile in SecurityOpt: %w", err))
	}
	return sc, nil
}
