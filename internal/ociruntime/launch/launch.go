// Package launch starts berth's container init in os types: it makes the
// init binary safe to exec (OpenBinary), gives the init its environment
// (Env), starts spare inits (StartSpare), and hands over the one started as
// the `berth runtime` process itself started (TakeEarly). Package spawn
// does the work with package syscall alone, so that the early spare can
// start before this package, or os, is initialised. ociruntime owns what
// an init does once started.
package launch

import (
	"fmt"
	"os"
	"path"
	"syscall"

	"github.com/berth/berth/internal/ociruntime/spawn"
)

// Environment variables the runtime sets for its init (package spawn).
const (
	FDsEnv    = spawn.FDsEnv
	SpareEnv  = spawn.SpareEnv
	TimingEnv = spawn.TimingEnv
)

// SpareFlags are the namespaces a spare is born in (spawn.SpareFlags).
const SpareFlags = spawn.SpareFlags

// DefaultRoot is the runtime's state root unless --root (Runtime.Root) says.
const DefaultRoot = spawn.DefaultRoot

// DefaultArgs are the init's arguments unless the runtime is told others.
var DefaultArgs = spawn.DefaultArgs

// Env is the init's environment (spawn.Env).
func Env(fds string) []string { return spawn.Env(fds) }

// A Spare is an init started ahead of need, waiting to be adopted
// (ociruntime's spare.go has the protocol).
type Spare struct {
	Process *os.Process
	Sock    *os.File // this process's end of the sync socketpair
}

// StartSpare starts the init binary at initPath (args: its argv, nil for
// DefaultArgs) as a spare (spawn.Start) through its read-only mount
// (OpenBinary). A warm spare, which will wait, decodes a sample config
// meanwhile; an eager one gets its config at once.
func StartSpare(initPath string, args []string, warm bool) (*Spare, error) {
	if len(args) == 0 {
		args = DefaultArgs
	}
	exe, err := OpenBinary(initPath)
	if err != nil {
		return nil, fmt.Errorf("init binary: %w", err)
	}
	defer exe.Close()
	mode := "eager"
	if warm {
		mode = "warm"
	}
	pid, sock, err := spawn.Start(int(exe.Fd()), args, mode)
	if err != nil {
		return nil, err
	}
	return newSpare(pid, sock)
}

// TakeEarly hands over the spare started as this process started
// (spawn's early spare), once its start is done, if it was started for the
// state root root; nil otherwise. It hands it over once: call it from one
// goroutine.
func TakeEarly(root string) *Spare {
	if r, ok := spawn.EarlyRoot(); !ok || path.Clean(r) != path.Clean(root) {
		return nil
	}
	e, ok := spawn.TakeEarly()
	if !ok {
		return nil
	}
	adoptBinary(e.ExePath, os.NewFile(uintptr(e.Exe), "berth-init"))
	sp, err := newSpare(e.Pid, e.Sock)
	if err != nil {
		return nil
	}
	return sp
}

// newSpare wraps a started spare's pid and socket. Should the process
// handle fail, the spare is ended: its socket closes, and it exits.
func newSpare(pid, sock int) (*Spare, error) {
	p, err := os.FindProcess(pid)
	if err != nil {
		syscall.Close(sock)
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("start a spare init: %w", err)
	}
	return &Spare{Process: p, Sock: os.NewFile(uintptr(sock), "sync")}, nil
}

// Discard ends a spare that no container took, or one whose adoption
// failed.
func (sp *Spare) Discard() {
	sp.Sock.Close()
	sp.Process.Kill()
	sp.Process.Wait()
}
