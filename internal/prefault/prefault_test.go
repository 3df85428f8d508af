package prefault

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/rawproc"
)

const mb = 1 << 20

// region is an anonymous mapping of 8 MB, writable only in [2 MB, 6 MB),
// as a Go heap chunk sits in its arena's reservation.
func region(t *testing.T) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, 8*mb, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	if err := unix.Mprotect(b[2*mb:6*mb], unix.PROT_READ|unix.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	return b
}

// resident lists, per 4 KiB page of b, whether it is mapped in.
func resident(t *testing.T, b []byte) []bool {
	t.Helper()
	vec := make([]byte, len(b)/pageSize)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// supported skips the test on a kernel without MADV_POPULATE_WRITE.
func supported(t *testing.T) {
	t.Helper()
	b := region(t)
	if err := populate(uintptr(unsafe.Pointer(&b[2*mb])), pageSize); errors.Is(err, syscall.EINVAL) {
		t.Skip("the kernel lacks MADV_POPULATE_WRITE (Linux 5.14)")
	}
}

func TestAround(t *testing.T) {
	supported(t)
	for _, tc := range []struct {
		name   string
		at     int // offset of p in the region
		lo, hi int // the resident range expected, in bytes
	}{
		// Page of p: 3 MB + 4 KiB. Below it, 1 MB in 64 KiB steps; above, 2 MB.
		{"inside", 3*mb + 5000, 2*mb + 4096, 5*mb + 4096},
		// Upward stops at the mapping's end.
		{"near the end", 5*mb + mb/2, 4*mb + mb/2, 6 * mb},
		// Downward stops at the first step reaching below the start.
		{"near the start", 2*mb + 100<<10, 2*mb + 100<<10 - step, 4*mb + 100<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := region(t)
			b[3*mb+7] = 42 // a page in use keeps its contents
			p := uintptr(unsafe.Pointer(&b[tc.at]))
			if err := around(p, behind, ahead); err != nil {
				t.Fatal(err)
			}
			if b[3*mb+7] != 42 {
				t.Fatal("a page's contents changed")
			}
			for i, in := range resident(t, b) {
				off := i * pageSize
				if want := off >= tc.lo && off < tc.hi || off == 3*mb; in != want {
					t.Fatalf("page at %#x: resident %v, want %v (want [%#x, %#x))", off, in, want, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestAroundReadOnly(t *testing.T) {
	supported(t)
	b := region(t)
	if err := unix.Mprotect(b[2*mb:6*mb], unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	if err := around(uintptr(unsafe.Pointer(&b[3*mb])), behind, ahead); err == nil {
		t.Fatal("populated a read-only mapping writable")
	}
	for i, in := range resident(t, b) {
		if in {
			t.Fatalf("page at %#x resident", i*pageSize)
		}
	}
}

func TestLongLived(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"berth\x00daemon\x00--data-root\x00/x\x00", true},
		{"/usr/bin/berth\x00monitor\x00--socket\x00s\x00", true},
		{"berth\x00ps\x00", false},
		{"berth\x00runtime\x00run\x00daemon\x00", false},
		{"berth-runc\x00run\x00", false},
		{"berth\x00", false},
		{"berth\x00daemonx", false},
		{"", false},
	} {
		if got := longLived(rawproc.SplitNUL([]byte(tc.cmdline))); got != tc.want {
			t.Errorf("longLived(%q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

func TestBinaryRanges(t *testing.T) {
	maps := `00400000-00401000 r--p 00000000 fe:00 9986391 /usr/local/bin/berth
00401000-00cfc000 r-xp 00001000 fe:00 9986391 /usr/local/bin/berth
00cfc000-01b33000 r--p 008fc000 fe:00 9986391 /usr/local/bin/berth
01b33000-01ba6000 rw-p 01732000 fe:00 9986391 /usr/local/bin/berth
01ba6000-03c68000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7ffd1152e000-7ffd1154f000 rw-p 00000000 00:00 0                          [stack]
7ffd115f8000-7ffd115fc000 r--p 00000000 00:00 0                          [vvar]
7ffd115fc000-7ffd115fe000 r-xp 00000000 00:00 0                          [vdso]
zz-00401000 r-xp 00001000 fe:00 9986391 /usr/local/bin/berth
00402000-00401000 r-xp 00001000 fe:00 9986391 /usr/local/bin/berth
00402000 r-xp 00001000 fe:00 9986391 /usr/local/bin/berth`
	got := binaryRanges([]byte(maps))
	want := [][2]uintptr{{0x400000, 0x401000}, {0x401000, 0xcfc000}, {0xcfc000, 0x1b33000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %x, want %x", got, want)
		}
	}
	if got := binaryRanges(nil); len(got) != 0 {
		t.Fatalf("no maps: got %x", got)
	}
}

// The read-only data of this test binary, where a string literal lives,
// is among its ranges.
func TestBinaryRangesOfSelf(t *testing.T) {
	lit := uintptr(unsafe.Pointer(unsafe.StringData("a literal in read-only data")))
	for _, r := range binaryRanges(rawproc.ReadFile("/proc/self/maps", 64<<10)) {
		if r[0] <= lit && lit < r[1] {
			return
		}
	}
	t.Fatalf("no range holds the literal at %#x", lit)
}
