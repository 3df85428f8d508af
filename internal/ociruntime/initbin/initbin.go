// Package initbin carries the static container init (cmd/berth-init) and
// the user-namespace entry helper (cmd/berth-nsenter) inside berth, and
// installs them where the runtime execs them from. `make build` builds
// both first and then berth with the embedinit tag (package blob holds
// them); a berth built without the tag carries neither: the runtime then execs itself as
// `berth init`, which runs the same code more slowly, and cannot exec into
// a container with a user namespace (docs/decisions/0090).
package initbin

import (
	"fmt"
	"os"

	"github.com/berth/berth/internal/embedmem"
	"github.com/berth/berth/internal/ociruntime/initbin/blob"
)

// program is one embedded executable: its bytes and the hex SHA-256 of
// them, computed at build time (hashing megabytes at every start would
// cost more than the init saves).
type program struct {
	name      string
	bytes, id string
}

var (
	initProgram    = program{"berth-init", blob.Init, blob.InitID}
	nsenterProgram = program{"berth-nsenter", blob.Nsenter, blob.NsenterID}
)

// The programs' pages are dropped from memory once installed and idle
// (the daemon's idle release).
func init() {
	embedmem.Register(blob.Init)
	embedmem.Register(blob.Nsenter)
}

// Embedded reports whether this binary carries the init.
func Embedded() bool { return len(initProgram.bytes) > 0 }

// Install writes the init to dir/berth-init-<id> unless it is there
// already, and returns its path; "" when nothing is embedded.
func Install(dir string) (string, error) { return initProgram.install(dir) }

// InstallNsenter is Install for berth-nsenter.
func InstallNsenter(dir string) (string, error) { return nsenterProgram.install(dir) }

// install writes p to dir/<name>-<id>. The file is named by its content
// and replaced atomically: a container starting meanwhile execs a whole
// one. The mode is 0555: an init in a user namespace that does not map
// root must still be let exec it (the runtime execs it through a read-only
// bind mount's fd, not by path).
func (p program) install(dir string) (string, error) {
	if len(p.bytes) == 0 {
		return "", nil
	}
	file, whole := blob.Installed(dir, p.name, p.id, len(p.bytes))
	if file == "" {
		return "", fmt.Errorf("the embedded %s has no id", p.name)
	}
	if whole {
		return file, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("install %s: %w", p.name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+p.name+"-")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", p.name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(p.bytes)
	if err == nil {
		err = tmp.Chmod(0o555)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return "", fmt.Errorf("install %s: %w", p.name, err)
	}
	return file, nil
}
