package embedmem

import (
	_ "embed"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unsafe"
)

//go:embed testdata/blob.txt
var blob string

// mapped reports, from /proc/self/pagemap, whether the page holding p is
// mapped into this process.
func mapped(t *testing.T, p unsafe.Pointer) bool {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer f.Close()
	var e [8]byte
	if _, err := f.ReadAt(e[:], int64(uintptr(p)/uintptr(os.Getpagesize()))*8); err != nil {
		t.Skipf("pagemap: %v", err)
	}
	return binary.LittleEndian.Uint64(e[:])>>63 == 1
}

func reset(t *testing.T) {
	saved := blobs
	blobs = nil
	t.Cleanup(func() { blobs = saved })
}

// An embedded blob's whole pages leave the process at Release and come
// back, unchanged, when read again.
func TestReleaseDropsEmbeddedPages(t *testing.T) {
	reset(t)
	want, err := os.ReadFile("testdata/blob.txt")
	if err != nil {
		t.Fatal(err)
	}
	if blob != string(want) {
		t.Fatal("the embedded blob differs from its file")
	}
	page := os.Getpagesize()
	if len(blob) < 3*page {
		t.Fatalf("the test blob (%d bytes) must span whole pages", len(blob))
	}
	// A byte in the middle: its page lies wholly inside the blob.
	mid := unsafe.Add(unsafe.Pointer(unsafe.StringData(blob)), len(blob)/2)
	if !mapped(t, mid) {
		t.Fatal("a page just read is not mapped")
	}
	Register(blob)
	if err := Release(); err != nil {
		t.Fatal(err)
	}
	if mapped(t, mid) {
		t.Error("the blob's middle page is still mapped after Release")
	}
	if blob != string(want) {
		t.Error("the blob reads differently after Release")
	}
}

// A string that is not embedded (here, on the heap) is refused and left
// as it was: dropping its pages would zero them.
func TestReleaseRefusesHeapStrings(t *testing.T) {
	reset(t)
	heap := strings.Repeat("x", 4*os.Getpagesize())
	Register(heap)
	if err := Release(); err == nil {
		t.Error("Release accepted a heap string")
	}
	if strings.Count(heap, "x") != len(heap) {
		t.Error("the heap string was changed")
	}
}
