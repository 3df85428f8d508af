// Package ociruntime is berth's OCI runtime: it turns a runtime-spec bundle
// into a running container (namespaces, rootfs, devices, security settings)
// and keeps per-container state under a state root, like runc.
//
// The parent side (Runtime: Create, Start, State, Kill, Delete, Run, List,
// Ps, Exec) runs in whatever process drives the runtime (the `berth runtime`
// CLI or the monitor); the child side (InitMain) runs as `berth init`, a
// re-exec of the berth binary that finishes the container's setup from
// inside its new namespaces and finally execs the user's process. The two
// talk over a socketpair with the protocol drawn in sync.go.
//
// Exec (exec.go) runs `berth init` in an exec mode: born in the container's
// namespaces (the mount namespace it joins itself, after exec, so the
// dynamically linked binary loads from the host's tree) and cgroup, it skips
// the rootfs setup and only finishes the process. A container with a user
// namespace is entered through berth-nsenter (cmd/berth-nsenter), a small
// single-threaded C program that joins it and execs the init:
// setns(CLONE_NEWUSER) is refused to any Go process, which is always
// multi-threaded. See docs/design/runtime.md, "Exec".
package ociruntime
