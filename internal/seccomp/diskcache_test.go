package seccomp

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func clearMemoryCache() {
	cache.mu.Lock()
	clear(cache.progs)
	cache.mu.Unlock()
}

func TestCompileCachedUsesDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}
	clearMemoryCache()
	p1, err := CompileCached(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", st, err)
	}
	clearMemoryCache()
	before := compiles.Load()
	p2, err := CompileCached(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if compiles.Load() != before {
		t.Error("the second start compiled again instead of reading the disk cache")
	}
	if !bytes.Equal(p1.Filter, p2.Filter) || p1.Flags != p2.Flags {
		t.Error("the cached program differs from the compiled one")
	}
}

// An attacker who can write the cache could lift every container's
// filter: entries (and directories) writable by others, or symlinks, are
// ignored and the profile is compiled afresh.
func TestCompileCachedRefusesTamperedEntries(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	clearMemoryCache()
	want, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// "ret SECCOMP_RET_ALLOW": a program that allows everything.
	evil := binary.LittleEndian.AppendUint64(nil, 0)
	evil = binary.NativeEndian.AppendUint16(evil, unix.BPF_RET|unix.BPF_K)
	evil = append(evil, 0, 0)
	evil = binary.NativeEndian.AppendUint32(evil, unix.SECCOMP_RET_ALLOW)

	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir, entry string)
	}{
		{"world-writable entry", func(t *testing.T, dir, entry string) {
			writeFile(t, entry, evil, 0o666)
		}},
		{"entry in a world-writable dir", func(t *testing.T, dir, entry string) {
			writeFile(t, entry, evil, 0o600)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlinked entry", func(t *testing.T, dir, entry string) {
			other := filepath.Join(t.TempDir(), "evil")
			writeFile(t, other, evil, 0o600)
			if err := os.Symlink(other, entry); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			clearMemoryCache()
			if _, err := CompileCached(cfg, dir); err != nil { // learn the entry's name
				t.Fatal(err)
			}
			ents, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
			if len(ents) != 1 {
				t.Fatalf("cache entries: %v", ents)
			}
			os.Remove(ents[0])
			tt.prepare(t, dir, ents[0])
			clearMemoryCache()
			got, err := CompileCached(cfg, dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Filter, want.Filter) {
				t.Error("a tampered cache entry was used")
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
