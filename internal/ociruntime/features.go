package ociruntime

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// seccompEnabled is set when the binary links the seccomp loader.
var seccompEnabled = false

// Features describes what this runtime supports, as `runc features`.
func Features() *features.Features {
	yes, no := true, false
	var caps, opts, ns []string
	for c := range capNames {
		caps = append(caps, c)
	}
	for o := range mountFlagNames {
		opts = append(opts, o)
	}
	for o := range propagationNames {
		opts = append(opts, o)
	}
	for n := range nsFlags {
		if n != "time" {
			ns = append(ns, n)
		}
	}
	sort.Strings(caps)
	sort.Strings(opts)
	sort.Strings(ns)
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp:      &features.Seccomp{Enabled: &seccompEnabled},
			Apparmor:     &features.Apparmor{Enabled: &no},
			Selinux:      &features.Selinux{Enabled: &no},
			IntelRdt:     &features.IntelRdt{Enabled: &no},
		},
		Annotations: map[string]string{"io.github.berth.runtime": "berth"},
	}
	return f
}
