// Package prefault maps in, with a few system calls as a short-lived berth
// process starts, the pages it is about to touch: the first megabytes of
// its Go heap, and the binary's code and read-only data. Without it each
// 4 KiB page costs a page fault the first time it is used.
//
// Why: in a virtual machine a page fault costs a trap to the hypervisor.
// On the project machine (a Firecracker guest) a first write to an
// anonymous page costs ≈ 12 µs and a first read of a cached file page ≈ 5
// µs (the kernel maps 16 pages around it), while MADV_POPULATE_WRITE maps
// anonymous pages at ≈ 0.7 µs each and MADV_POPULATE_READ the whole 9 MB
// of berth's code in ≈ 0.15 ms. A CLI command or a `berth runtime run`
// took ≈ 500–600 faults as it started, a third of `berth ps`. On bare metal
// a fault costs ≈ 1 µs, and the calls about what the faults they save did.
//
// Import it, for its effect only, from a main package. Go initialises a
// package once its imports are, in import-path order among those ready:
// this one imports only syscall, unsafe and rawproc, so it runs ≈ 2.5 ms after exec,
// before most of the binary's package initialisers and all of main. A
// daemon or a monitor (argv[1] "daemon" or "monitor") is left alone: it
// lives for days, pages populated but never used by Go would stay resident
// (Go counts fresh memory as released already, so it never releases them),
// and the idle daemon's RSS is a goal of its own
// (docs/decisions/0099-prefault.md).
package prefault

import (
	"syscall"
	"unsafe"

	"github.com/berth/berth/internal/rawproc"
)

const (
	madvPopulateRead  = 22 // MADV_POPULATE_READ, Linux 5.14
	madvPopulateWrite = 23 // MADV_POPULATE_WRITE
	pageSize          = 4 << 10

	// ahead and behind bound what is populated around the first object of
	// the package's: the heap a CLI command touched reached ≈ 1.3 MB above
	// it, and earlier allocations (the runtime's) sit below it, with free
	// pages between them that Go, which allocates the lowest free address
	// first, fills next.
	ahead  = 2 << 20
	behind = 1 << 20
	step   = 64 << 10 // below the object, populated a step at a time
)

// anchor is the object whose address says where the heap is.
var anchor *[16]byte

func init() {
	if longLived(rawproc.Args()) {
		return
	}
	anchor = new([16]byte)
	around(uintptr(unsafe.Pointer(anchor)), behind, ahead)
	// The code and read-only data: ≈ 24 MB of page cache, shared with
	// every other berth process, that the kernel keeps or drops as any
	// cached file's.
	for _, r := range binaryRanges(rawproc.ReadFile("/proc/self/maps", 8<<10)) {
		madvise(r[0], r[1]-r[0], madvPopulateRead)
	}
}

// around populates, writable, the pages of [p-behind, p+ahead) in p's
// mapping. It tries p's page alone first, then upward in one call, which
// stops where the mapping ends (the kernel populates up to there, then
// fails), then downward a step at a time until a step fails, where the
// mapping starts. Pages mapped already are left as they are, contents and
// all. It fails, having done nothing, on a kernel without
// MADV_POPULATE_WRITE or where p's page is not mapped writable (EINVAL
// both, ENOMEM where it is not mapped).
func around(p, behind, ahead uintptr) error {
	page := p &^ (pageSize - 1)
	if err := populate(page, pageSize); err != nil {
		return err
	}
	populate(page, ahead)
	for below := uintptr(step); below <= behind && below <= page; below += step {
		if populate(page-below, step) != nil {
			break
		}
	}
	return nil
}

// populate asks the kernel to map [addr, addr+n) writable; madvise retries
// when a signal (the Go scheduler's preemption) interrupted the call.
func populate(addr, n uintptr) error { return madvise(addr, n, madvPopulateWrite) }

func madvise(addr, n, advice uintptr) error {
	for {
		_, _, e := syscall.Syscall(syscall.SYS_MADVISE, addr, n, advice)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return e
		}
	}
}

// longLived reports whether a command line is the daemon's or the
// monitor's.
func longLived(args []string) bool {
	return len(args) > 1 && (args[1] == "daemon" || args[1] == "monitor")
}

// binaryRanges lists the address ranges of the read-only file mappings in
// a /proc/PID/maps text (the static binary's text and read-only data:
// it maps no other file).
func binaryRanges(maps []byte) [][2]uintptr {
	var out [][2]uintptr
	for len(maps) > 0 {
		line := maps
		if i := indexByte(maps, '\n'); i >= 0 {
			line, maps = maps[:i], maps[i+1:]
		} else {
			maps = nil
		}
		// "start-end perms offset dev inode path"
		f := fields(line)
		if len(f) < 6 || f[5][0] != '/' || (f[1] != "r-xp" && f[1] != "r--p") {
			continue
		}
		start, end, ok := parseRange(f[0])
		if ok {
			out = append(out, [2]uintptr{start, end})
		}
	}
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func fields(b []byte) []string {
	var out []string
	for i := 0; i < len(b); {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if j > i {
			out = append(out, string(b[i:j]))
		}
		i = j
	}
	return out
}

// parseRange parses "start-end" in hexadecimal.
func parseRange(s string) (start, end uintptr, ok bool) {
	var v [2]uintptr
	k, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && k == 0 && digits > 0:
			k, digits = 1, 0
			continue
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, 0, false
		}
		v[k] = v[k]<<4 | uintptr(c)
		digits++
	}
	return v[0], v[1], k == 1 && digits > 0 && v[1] > v[0]
}
