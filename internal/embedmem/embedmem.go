// Package embedmem gives back the memory that blobs compiled into berth
// (go:embed) hold in the process once they have served: the container
// init, the --init program and the hello image are written out once and
// then only take room. The kernel maps a binary's pages around every
// fault, whole large folios at a time, so a blob nobody reads still shows
// in the daemon's resident set because its neighbours were read.
//
// A blob is a string embedded with go:embed: its bytes live in the
// binary's read-only data, a private read-only file mapping that nothing
// ever writes. Dropping such pages (MADV_DONTNEED) loses nothing: reading
// the blob again faults them back in from the file.
package embedmem

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	mu    sync.Mutex
	blobs []string
)

// Register adds b, a go:embed string, to the blobs Release drops. Call it
// from the embedding package's init.
func Register(b string) {
	if len(b) == 0 {
		return
	}
	mu.Lock()
	blobs = append(blobs, b)
	mu.Unlock()
}

// Release drops this process's mappings of the whole pages of every
// registered blob. It checks first that each blob lies inside a read-only
// mapping of this executable, so a string that is not embedded is never
// touched (dropping a heap page would zero it).
func Release() error {
	mu.Lock()
	defer mu.Unlock()
	if len(blobs) == 0 {
		return nil
	}
	ro, err := readOnlySelfMappings()
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if !inside(ro, b) {
			return fmt.Errorf("embedmem: a blob of %d bytes is not in a read-only mapping of the executable", len(b))
		}
		if err := drop(b); err != nil {
			return err
		}
	}
	return nil
}

// span is one address range [lo, hi).
type span struct{ lo, hi uintptr }

func inside(spans []span, b string) bool {
	lo := uintptr(unsafe.Pointer(unsafe.StringData(b)))
	hi := lo + uintptr(len(b))
	for _, s := range spans {
		if s.lo <= lo && hi <= s.hi {
			return true
		}
	}
	return false
}

// drop advises the kernel that b's whole pages are not needed.
func drop(b string) error {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.StringData(b)))
	skip := (page - start%page) % page
	if uintptr(len(b)) <= skip {
		return nil
	}
	n := (uintptr(len(b)) - skip) &^ (page - 1)
	if n == 0 {
		return nil
	}
	p := unsafe.Add(unsafe.Pointer(unsafe.StringData(b)), skip)
	if err := unix.Madvise(unsafe.Slice((*byte)(p), n), unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("embedmem: madvise: %w", err)
	}
	return nil
}

// readOnlySelfMappings lists the private read-only mappings of the file
// this process runs, from /proc/self/maps, matched by device and inode.
func readOnlySelfMappings() ([]span, error) {
	var exe unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
		return nil, fmt.Errorf("embedmem: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("embedmem: %w", err)
	}
	defer f.Close()
	var out []span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi, off uint64
		var perms string
		var major, minor uint32
		var inode uint64
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x %s %x %x:%x %d", &lo, &hi, &perms, &off, &major, &minor, &inode); err != nil {
			continue
		}
		if len(perms) != 4 || perms[1] != '-' || perms[3] != 'p' || inode != exe.Ino || unix.Mkdev(major, minor) != uint64(exe.Dev) {
			continue
		}
		out = append(out, span{uintptr(lo), uintptr(hi)})
	}
	return out, sc.Err()
}
