// Package ociruntime is berth's OCI runtime: it turns a runtime-spec bundle
// into a running container (namespaces, rootfs, devices, security settings)
// and keeps per-container state under a state root, like runc.
//
// The parent side (Runtime: Create, Start, State, Kill, Delete, Run, List,
// Ps) runs in whatever process drives the runtime (the `berth runtime` CLI or
// the monitor); the child side (InitMain) runs as `berth init`, a re-exec of
// the berth binary that finishes the container's setup from inside its new
// namespaces and finally execs the user's process. The two talk over a
// socketpair with the protocol drawn in sync.go.
package ociruntime
