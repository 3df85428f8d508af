package ociruntime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// isIDChars reports whether id has only letters, digits, '_', '+', '-'
// and '.' (runc's `^[\w+-\.]+$`).
func isIDChars(id string) bool {
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+-.", c)
		if !ok {
			return false
		}
	}
	return true
}

// ValidateID checks a container id is usable as a file name under the
// state root.
func ValidateID(id string) error {
	if id == "" || !isIDChars(id) || id == "." || id == ".." || len(id) > 1024 {
		return errdefs.Invalidf("invalid container id %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}

// ParseSignal parses a signal name ("KILL", "SIGKILL") or number ("9").
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalidf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		base, sign := 34, 1
		if name[:5] == "RTMAX" {
			base, sign = 64, -1
		}
		off := 0
		if rest := strings.TrimLeft(name[5:], "+-"); rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil {
				return 0, errdefs.Invalidf("unknown signal %q", s)
			}
			off = n
		}
		if sig := base + sign*off; sig >= 34 && sig <= 64 {
			return unix.Signal(sig), nil
		}
	}
	return 0, errdefs.Invalidf("unknown signal %q", s)
}

// Validate checks a spec before anything is cloned, and names the field at
// fault in its error ("linux.namespaces[2].type: unknown namespace type").
// Every problem is reported, not just the first.
func Validate(s *specs.Spec) error {
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, field+": "+fmt.Sprintf(format, args...))
	}
	if s == nil {
		return errdefs.Invalidf("config.json: empty spec")
	}
	if s.Version == "" {
		bad("ociVersion", "must be set")
	} else if !strings.HasPrefix(s.Version, "1.") {
		bad("ociVersion", "unsupported version %q (berth supports 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		bad("root.path", "must be set")
	}
	if s.Process == nil {
		bad("process", "must be set")
	} else {
		p := s.Process
		if len(p.Args) == 0 || p.Args[0] == "" {
			bad("process.args", "must not be empty")
		}
		if p.Cwd == "" {
			bad("process.cwd", "must be set")
		} else if !filepath.IsAbs(p.Cwd) {
			bad("process.cwd", "must be an absolute path, got %q", p.Cwd)
		}
		for i, e := range p.Env {
			if !strings.Contains(e, "=") {
				bad(fmt.Sprintf("process.env[%d]", i), "%q is not KEY=value", e)
			}
		}
		seen := map[string]bool{}
		for i, r := range p.Rlimits {
			f := fmt.Sprintf("process.rlimits[%d]", i)
			if _, ok := rlimitNames[r.Type]; !ok {
				bad(f+".type", "unknown rlimit %q", r.Type)
			}
			if seen[r.Type] {
				bad(f+".type", "rlimit %q given twice", r.Type)
			}
			seen[r.Type] = true
			if r.Soft > r.Hard {
				bad(f, "soft limit %d above hard limit %d", r.Soft, r.Hard)
			}
		}
		if c := p.Capabilities; c != nil {
			for _, set := range []struct {
				name string
				list []string
			}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"inheritable", c.Inheritable}, {"permitted", c.Permitted}, {"ambient", c.Ambient}} {
				for i, name := range set.list {
					if _, ok := capNames[strings.ToUpper(name)]; !ok {
						bad(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i), "unknown capability %q", name)
					}
				}
			}
		}
		if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
			bad("process.oomScoreAdj", "%d is outside -1000..1000", *p.OOMScoreAdj)
		}
		if p.ConsoleSize != nil && !p.Terminal {
			bad("process.consoleSize", "set without process.terminal")
		}
	}
	newNS := map[string]bool{}
	ownNS := map[string]bool{} // new or joined by path, not the host's
	if l := s.Linux; l == nil {
		bad("linux", "must be set")
	} else {
		seen := map[specs.LinuxNamespaceType]bool{}
		for i, ns := range l.Namespaces {
			f := fmt.Sprintf("linux.namespaces[%d]", i)
			if _, ok := nsFlags[string(ns.Type)]; !ok {
				bad(f+".type", "unknown namespace type %q", ns.Type)
				continue
			}
			if seen[ns.Type] {
				bad(f+".type", "namespace %q given twice", ns.Type)
			}
			seen[ns.Type] = true
			ownNS[string(ns.Type)] = true
			if ns.Path == "" {
				newNS[string(ns.Type)] = true
			} else if !filepath.IsAbs(ns.Path) {
				bad(f+".path", "must be absolute, got %q", ns.Path)
			} else if st, err := os.Stat(ns.Path); err != nil {
				bad(f+".path", "%v", errors.Unwrap(err))
			} else if ns.Type == specs.NetworkNamespace {
				// A network namespace joined by path (the network service
				// made it) is the container's own unless it is the host's,
				// as runc decides: then its net.* sysctls are allowed. The
				// host's is this thread's: a goroutine never runs on a
				// thread left in another namespace, while the main thread
				// (/proc/self) may be parked in one.
				if own, err := os.Stat("/proc/thread-self/ns/net"); err == nil && !os.SameFile(st, own) {
					newNS["network"] = true
				}
			}
		}
		if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !seen[specs.UserNamespace] {
			bad("linux.uidMappings", "set without a user namespace in linux.namespaces")
		}
		if newNS["user"] && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0) {
			bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
		}
		for k := range l.Sysctl {
			if err := sysctlNamespaceOK(k, newNS); err != nil {
				bad(fmt.Sprintf("linux.sysctl[%q]", k), "%v", err)
			}
		}
		for i, d := range l.Devices {
			f := fmt.Sprintf("linux.devices[%d]", i)
			if !filepath.IsAbs(d.Path) {
				bad(f+".path", "must be absolute, got %q", d.Path)
			}
			switch d.Type {
			case "c", "u", "b", "p":
			default:
				bad(f+".type", "unknown device type %q (want c, u, b or p)", d.Type)
			}
		}
		if _, ok := propagationNames[l.RootfsPropagation]; !ok && l.RootfsPropagation != "" {
			bad("linux.rootfsPropagation", "unknown propagation %q", l.RootfsPropagation)
		}
	}
	// A uts namespace joined by path is the container's own, as in runc.
	if s.Hostname != "" && !ownNS["uts"] {
		bad("hostname", "needs a uts namespace in linux.namespaces (the host's cannot be renamed)")
	}
	if s.Domainname != "" && !ownNS["uts"] {
		bad("domainname", "needs a uts namespace in linux.namespaces (the host's cannot be renamed)")
	}
	for i, m := range s.Mounts {
		f := fmt.Sprintf("mounts[%d]", i)
		if m.Destination == "" {
			bad(f+".destination", "must be set")
		}
		if _, _, _, err := parseMountOptions(m.Options); err != nil {
			bad(f+".options", "%v", err)
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			bad(f+".uidMappings", "idmapped mounts are not supported yet")
		}
	}
	if len(errs) > 0 {
		return errdefs.Invalidf("invalid config.json: %s", strings.Join(errs, "; "))
	}
	return unsupported(s)
}

// unsupported rejects what the spec asks for and berth cannot do yet:
// security features are never silently dropped.
func unsupported(s *specs.Spec) error {
	ni := func(format string, args ...any) error { return errdefs.NotImplemented(fmt.Errorf(format, args...)) }
	switch {
	case s.Process.ApparmorProfile != "":
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			return ni("process.apparmorProfile: %q asked for, but AppArmor is not enabled on this host", s.Process.ApparmorProfile)
		}
		return ni("process.apparmorProfile: AppArmor profiles are not implemented yet")
	case s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "":
		return ni("process.selinuxLabel: SELinux labels are not implemented (and SELinux is not enabled on this host)")
	case s.Linux.IntelRdt != nil:
		return ni("linux.intelRdt: not supported")
	case s.Process.IOPriority != nil:
		return ni("process.ioPriority: not supported yet")
	case s.Process.Scheduler != nil:
		return ni("process.scheduler: not supported yet")
	case len(s.Linux.TimeOffsets) > 0:
		return ni("linux.timeOffsets: not supported yet")
	case s.Linux.Personality != nil:
		return ni("linux.personality: not supported yet")
	}
	return nil
}

// sysctlNamespaceOK says whether sysctl name may be set given the new
// namespaces: only namespaced sysctls of a namespace the container owns.
func sysctlNamespaceOK(name string, newNS map[string]bool) error {
	if strings.Contains(name, "..") || strings.Contains(name, "/") {
		return fmt.Errorf("malformed name")
	}
	switch {
	case name == "kernel.msgmax", name == "kernel.msgmnb", name == "kernel.msgmni", name == "kernel.sem",
		name == "kernel.shmall", name == "kernel.shmmax", name == "kernel.shmmni",
		name == "kernel.shm_rmid_forced", strings.HasPrefix(name, "fs.mqueue."):
		if !newNS["ipc"] {
			return fmt.Errorf("needs a new ipc namespace")
		}
	case strings.HasPrefix(name, "net."):
		if !newNS["network"] {
			return fmt.Errorf("needs a new network namespace")
		}
	case name == "kernel.hostname", name == "kernel.domainname":
		return fmt.Errorf("set hostname/domainname instead")
	default:
		return fmt.Errorf("not a namespaced sysctl; it would change the host")
	}
	return nil
}
