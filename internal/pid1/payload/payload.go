// Package payload carries berth's tiny init (internal/pid1), built static
// and compressed, and installs it where containers started with --init
// bind it from.
package payload

//go:generate go test -run TestPayloadMatchesSource -update .

import (
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth/berth/internal/embedmem"
)

//go:embed pid1.gz
var compressed string

func init() { embedmem.Register(compressed) }

// Program returns the init's executable.
func Program() ([]byte, error) {
	zr, err := gzip.NewReader(strings.NewReader(compressed))
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
	path := filepath.Join(dir, "docker-init")
	if installed(path) {
		return path, nil
	}
	program, err := Program()
	if err != nil {
		return "", err
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

// installed reports whether path holds the embedded program, judged by the
// size and CRC-32 that the gzip trailer records, so a daemon start that
// finds it in place neither decompresses it nor holds a copy in memory. The
// check guards against a stale program from another berth version, not
// against forgery: dir is root's, and whoever can write there could as
// well replace the file after the check.
func installed(path string) bool {
	if len(compressed) < 8 {
		return false
	}
	trailer := []byte(compressed[len(compressed)-8:])
	wantCRC := binary.LittleEndian.Uint32(trailer[:4])
	wantSize := binary.LittleEndian.Uint32(trailer[4:])
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 || uint64(fi.Size()) != uint64(wantSize) {
		return false
	}
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return h.Sum32() == wantCRC
}
