// Package payload carries berth's tiny init (internal/pid1), built static
// and compressed, and installs it where containers started with --init
// bind it from.
package payload

//go:generate go test -run TestPayloadMatchesSource -update .

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

//go:embed pid1.gz
var compressed []byte

// Program returns the init's executable.
func Program() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("the embedded init: %w", err)
	}
	return io.ReadAll(zr)
}

// Install writes the init to dir/docker-init (mode 0755) unless the same
// program is there already, and returns its path. The file is replaced
// atomically, so a container starting meanwhile binds the old or the new
// one, never half of one.
func Install(dir string) (string, error) {
	program, err := Program()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "docker-init")
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, program) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".docker-init-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(program); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
