package layer

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzApply feeds arbitrary bytes to Apply as a layer and checks that
// nothing escapes: the sentinel directory next to the layer keeps exactly
// its one file, and nothing else appears beside the layer.
func FuzzApply(f *testing.F) {
	for _, tc := range maliciousCases {
		f.Add(tc.tar(f, "/tmp/berth-fuzz-outside"))
	}
	root := os.Geteuid() == 0
	var small []ent // the rich layer without its big file: small seeds fuzz faster
	for _, e := range richLayer(root) {
		if len(e.data) < 1024 {
			small = append(small, e)
		}
	}
	f.Add(mkTar(f, small...))
	f.Add(baseLayer(f))
	f.Add(whiteoutLayer(f))
	f.Add(sparseTar("s", 1<<20, 4096, []byte("data")))
	f.Add(mkTar(f, symlink("x", "../sentinel"), file("x/victim", "pwned"), hardlink("y", "x/victim"), file("x/.wh.victim", "")))

	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		removable(t, base)
		layer, sentinel := filepath.Join(base, "layer"), filepath.Join(base, "sentinel")
		os.Mkdir(layer, 0o755)
		os.Mkdir(sentinel, 0o755)
		os.WriteFile(filepath.Join(sentinel, "victim"), []byte("keep"), 0o644)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mode := ApplyWhiteouts // odd lengths: overlay whiteouts (mknod, trusted xattrs: root)
		if len(data)%2 == 1 {
			mode = OverlayWhiteouts
		}
		Apply(ctx, layer, bytes.NewReader(data), ApplyOptions{Whiteouts: mode, MaxSize: 16 << 20})

		ents, _ := os.ReadDir(base)
		if len(ents) != 2 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("something appeared next to the layer: %v", names)
		}
		sents, _ := os.ReadDir(sentinel)
		if len(sents) != 1 || sents[0].Name() != "victim" {
			t.Fatalf("sentinel directory changed: %v", sents)
		}
		if b, err := os.ReadFile(filepath.Join(sentinel, "victim")); err != nil || string(b) != "keep" {
			t.Fatalf("sentinel file changed: %q %v", b, err)
		}
	})
}

// randomLayer is a tar of n files of 1 MiB of random data.
func randomLayer(b *testing.B, n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var ents []ent
	for i := range n {
		buf := make([]byte, 1<<20)
		for j := 0; j < len(buf); j += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		ents = append(ents, file("data/f"+string(rune('a'+i/26))+string(rune('a'+i%26)), string(buf)))
	}
	return mkTar(b, ents...)
}

func benchmarkApply(b *testing.B, c Compression) {
	layer := randomLayer(b, 50)
	input := layer
	if c != Uncompressed {
		var buf bytes.Buffer
		w, _ := Compress(&buf, c)
		w.Write(layer)
		w.Close()
		input = buf.Bytes()
	}
	base := b.TempDir()
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, "l")
		os.Mkdir(dir, 0o755)
		if _, _, err := Apply(context.Background(), dir, bytes.NewReader(input), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func BenchmarkApply50MBUncompressed(b *testing.B) { benchmarkApply(b, Uncompressed) }
func BenchmarkApply50MBGzip(b *testing.B)         { benchmarkApply(b, Gzip) }
func BenchmarkApply50MBZstd(b *testing.B)         { benchmarkApply(b, Zstd) }

func BenchmarkDiffOverlay50MB(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "l")
	os.Mkdir(dir, 0o755)
	layer := randomLayer(b, 50)
	if _, _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		buf.Grow(len(layer) + 1<<20)
		if err := DiffOverlay(context.Background(), &buf, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplySmallFiles applies 2,000 1 KiB files in 20 directories
// (a distro base layer's shape). File creation dominates: on the CI VM one
// create costs ~1 ms in the kernel whatever the caller.
func BenchmarkApplySmallFiles(b *testing.B) {
	var ents []ent
	data := string(bytes.Repeat([]byte("x"), 1024))
	for d := range 20 {
		dn := "usr/share/d" + itoa(d) + "/"
		ents = append(ents, dir(dn))
		for f := range 100 {
			ents = append(ents, file(dn+"f"+itoa(f), data))
		}
	}
	layer := mkTar(b, ents...)
	base := b.TempDir()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, "l")
		os.Mkdir(dir, 0o755)
		if _, _, err := Apply(context.Background(), dir, bytes.NewReader(layer), ApplyOptions{Whiteouts: ApplyWhiteouts}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(ents)*b.N)/time.Since(start).Seconds(), "entries/s")
}
