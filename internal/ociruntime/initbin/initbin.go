// Package initbin carries the static container init (cmd/berth-init) inside
// berth and installs it where the runtime execs it from. `make build` builds
// the init first and then berth with the embedinit tag (embed.go); a berth
// built without the tag carries none and the runtime execs itself as
// `berth init`, which runs the same code more slowly (docs/decisions/0090).
package initbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// program and id are set by embed.go: the init's bytes and the hex SHA-256
// of them, computed at build time (hashing 4 MB at every start would cost
// more than the init saves).
var program, id []byte

// Embedded reports whether this binary carries the init.
func Embedded() bool { return len(program) > 0 }

// Install writes the init to dir/berth-init-<id> unless it is there
// already, and returns its path; "" when nothing is embedded. The
// file is named by its content and replaced atomically: a container
// starting meanwhile execs a whole one. The mode is 0555: an init in a
// user namespace that does not map root must still be let exec it (the
// runtime execs it through a read-only bind mount's fd, not by path).
func Install(dir string) (string, error) {
	if !Embedded() {
		return "", nil
	}
	name := "berth-init-" + strings.TrimSpace(string(id))
	if len(name) < len("berth-init-")+12 {
		return "", fmt.Errorf("the embedded init has no id")
	}
	path := filepath.Join(dir, name[:len("berth-init-")+12])
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm() == 0o555 && st.Size() == int64(len(program)) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("install the init: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".berth-init-")
	if err != nil {
		return "", fmt.Errorf("install the init: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(program)
	if err == nil {
		err = tmp.Chmod(0o555)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("install the init: %w", err)
	}
	return path, nil
}
