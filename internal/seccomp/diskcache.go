package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
)

// cacheFormat changes whenever what Compile produces for a profile could
// change (the ENOSYS stub, the file layout), so stale entries are ignored.
const cacheFormat = "berth-seccomp-2" // 2: binary tree layout

// CompileCached is Compile backed by a directory that outlives the
// process, for callers that start afresh for every container (`berth
// runtime create` as driven by containerd-shim or podman), where the
// in-memory cache never gets a second hit. dir (for instance
// /run/berth/seccomp) is created 0700 if missing. A cached program is
// trusted only if dir and the file belong to the caller's uid and are
// writable by no one else: whoever can write the cache can lift any
// container's filter. Any cache trouble falls back to compiling.
func CompileCached(cfg *specs.LinuxSeccomp, dir string) (*Program, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, errdefs.Invalidf("linux.seccomp: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", cacheFormat, Version(), runtime.GOARCH)
	h.Write(b)
	path := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))+".bpf")
	if err := ensurePrivateDir(dir); err == nil {
		if p, err := readCached(path); err == nil {
			return p, nil
		}
	}
	p, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	if ensurePrivateDir(dir) == nil {
		writeCached(dir, path, p) // best effort: the next start compiles again
	}
	return p, nil
}

// ensurePrivateDir makes dir (0700) if missing and checks that it is a
// directory of the caller's, writable by no one else.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	return private(&st, unix.S_IFDIR)
}

func private(st *unix.Stat_t, kind uint32) error {
	if st.Mode&unix.S_IFMT != kind {
		return errors.New("seccomp cache: unexpected file type")
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return errors.New("seccomp cache: not private to this user")
	}
	return nil
}

func readCached(path string) (*Program, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if err := private(&st, unix.S_IFREG); err != nil {
		return nil, err
	}
	const maxSize = 8 + 8*unix.BPF_MAXINSNS
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) <= 8 || len(b) > maxSize || (len(b)-8)%8 != 0 {
		return nil, errors.New("seccomp cache: malformed entry")
	}
	return &Program{Flags: uint(binary.LittleEndian.Uint64(b)), Filter: b[8:]}, nil
}

func writeCached(dir, path string, p *Program) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	defer os.Remove(f.Name()) // no-op after the rename
	b := binary.LittleEndian.AppendUint64(nil, uint64(p.Flags))
	b = append(b, p.Filter...)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		os.Rename(f.Name(), path)
	}
}
