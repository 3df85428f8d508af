package ociruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
)

// The parent (Create) and the container's init (`berth init`) talk over a
// unix socketpair, one JSON message per line. exec.fifo is the start
// barrier any later process can lift.
//
//	 parent (create)                               init (berth init)
//	 ───────────────                               ─────────────────
//	 validate spec, mkdir state dir, mkfifo
//	 exec.fifo, ro-bind the berth binary
//	 clone(new namespaces)+exec ─────────────────▶ starts, locks its OS thread,
//	 (Go writes uid_map/gid_map)                    blocks reading the socket
//	 cgroup Apply(pid)
//	 ──── {"type":"config", spec, rootfs, ...} ──▶ unshare cgroupns, oom_score_adj,
//	                                                mounts, devices, masked and
//	                                                readonly paths
//	 ◀────────────── {"type":"hooks"} ──────────── (only if prestart/createRuntime)
//	 cgroup Set(resources) at the first message,
//	 then prestart + createRuntime hooks
//	 ──────────── {"type":"hooks-done"} ─────────▶ createContainer hooks, pivot_root,
//	                                                hostname, sysctls, console, rlimits,
//	                                                cwd, user, caps, no_new_privs, seccomp
//	 ◀───────── {"type":"ready"} or ─────────────── (any failure: {"type":"error"}
//	            {"type":"error","error":"..."}      and exit 1)
//	 write state.json, pid file; exit              blocks reading exec.fifo
//
//	 start (any process): write 1 byte ─exec.fifo─▶ startContainer hooks, execve(args)
//	 unlink exec.fifo, run poststart hooks          (init IS the container process now)
//
// No berth process stays behind: the create-er exits after "ready", the
// init becomes the user's process. In the monitor the clone is usually
// done ahead: a spare init (spare.go) takes the container's stdio, fifo,
// cgroup and namespaces in one message, then this protocol goes on from
// "config".

// syncMsg is one message of the protocol above.
type syncMsg struct {
	Type  string      `json:"type"`
	Error string      `json:"error,omitempty"`
	Class string      `json:"class,omitempty"`
	Init  *initConfig `json:"init,omitempty"`
}

const (
	msgConfig    = "config"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

// initConfig is everything the init needs besides its file descriptors.
type initConfig struct {
	Spec       *specs.Spec `json:"spec"`
	Rootfs     string      `json:"rootfs"` // absolute host path
	Bundle     string      `json:"bundle"`
	NoPivot    bool        `json:"noPivot,omitempty"`
	NewUserNS  bool        `json:"newUserNS,omitempty"`
	NewCgroup  bool        `json:"newCgroupNS,omitempty"`
	NewMountNS bool        `json:"newMountNS,omitempty"`
	NewPidNS   bool        `json:"newPidNS,omitempty"`
	// HostMountNS: no mount namespace in the spec, the init works in the
	// host's mount namespace (runc allows it): no propagation change, no
	// rootfs self-bind, chroot instead of pivot_root.
	HostMountNS bool        `json:"hostMountNS,omitempty"`
	State       specs.State `json:"state"` // for createContainer/startContainer hooks
	// Seccomp is linux.seccomp compiled by the parent (nil: no filter).
	Seccomp *seccompProgram `json:"seccomp,omitempty"`
	// Exec is set when the init runs a process in an existing container
	// (Runtime.Exec) instead of setting one up.
	Exec *execConfig `json:"exec,omitempty"`
}

// The init's file descriptors are named in launch.FDsEnv as
// "sync,fifo,console,preserved[,exe]" numbers (-1 for none), since preserved
// fds take 3 and up: exe is the init binary it was exec'd from, which it
// closes first.

type syncConn struct {
	f   *os.File
	dec *json.Decoder
}

func newSyncConn(f *os.File) *syncConn { return &syncConn{f: f, dec: json.NewDecoder(f)} }

func (c *syncConn) send(m syncMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.f.Write(append(b, '\n'))
	return err
}

func (c *syncConn) recv() (syncMsg, error) {
	var m syncMsg
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return m, io.ErrUnexpectedEOF
		}
		return m, err
	}
	return m, nil
}

func (c *syncConn) expect(typ string) (syncMsg, error) {
	m, err := c.recv()
	if err != nil {
		return m, err
	}
	if m.Type == msgError {
		return m, initError(m)
	}
	if m.Type != typ {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// initError turns an error message of the init back into a classified error.
func initError(m syncMsg) error {
	err := errors.New(m.Error)
	for _, c := range []*errdefs.Class{errdefs.ErrInvalid, errdefs.ErrNotFound, errdefs.ErrResourceLimited,
		errdefs.ErrNotImplemented, errdefs.ErrForbidden} {
		if c.Error() == m.Class {
			switch c {
			case errdefs.ErrInvalid:
				return errdefs.Invalid(err)
			case errdefs.ErrNotFound:
				return errdefs.NotFound(err)
			case errdefs.ErrResourceLimited:
				return errdefs.ResourceLimited(err)
			case errdefs.ErrNotImplemented:
				return errdefs.NotImplemented(err)
			case errdefs.ErrForbidden:
				return errdefs.Forbidden(err)
			}
		}
	}
	return err
}

func errorMsg(err error) syncMsg {
	m := syncMsg{Type: msgError, Error: err.Error()}
	if c := errdefs.ClassOf(err); c != nil {
		m.Class = c.Error()
	}
	return m
}
