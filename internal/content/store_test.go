package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listFiles returns every regular file under the blobs directory.
func blobFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(s.root, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, berth")
	dgst := digest.FromBytes(data)

	w, err := s.Writer(ctx, "test-"+dgst.String(), dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != dgst || w.Offset() != int64(len(data)) {
		t.Fatalf("writer state %s/%d", w.Digest(), w.Offset())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close() // no-op after commit

	info, err := s.Info(ctx, dgst)
	if err != nil || info.Size != int64(len(data)) || info.Digest != dgst {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	got, err := s.ReadBlob(ctx, dgst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := ra.ReadAt(buf, 7); err != nil || string(buf) != "berth" || ra.Size() != int64(len(data)) {
		t.Fatalf("ReadAt = %q, %v, size %d", buf, err, ra.Size())
	}
	ra.Close()
	rc, err := s.Open(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(all, data) {
		t.Fatalf("Open read %q", all)
	}
	ings, _ := s.Ingests(ctx)
	if len(ings) != 0 {
		t.Fatalf("ingests left after commit: %+v", ings)
	}
}

func TestUnknownDigestCommit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, err := s.Writer(ctx, "build-1", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "new layer")
	dgst := w.Digest()
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, dgst); err != nil || dgst != digest.FromString("new layer") {
		t.Fatalf("Info(%s): %v", dgst, err)
	}
}

func TestMismatchRejected(t *testing.T) {
	ctx := context.Background()
	data := []byte("the real content")
	good := digest.FromBytes(data)
	bad := digest.FromString("something else")
	tests := []struct {
		name     string
		expected digest.Digest
		size     int64
		write    []byte
		want     string
	}{
		{"wrong digest", bad, int64(len(data)), data, "digest mismatch"},
		{"short", good, int64(len(data)) + 1, data, "size mismatch"},
		{"long", good, int64(len(data)) - 1, data, "more data than"},
		{"wrong digest unknown size", bad, -1, data, "digest mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			w, err := s.Writer(ctx, "r", tt.expected, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(tt.write)
			if err == nil {
				err = w.Commit(ctx)
			} else {
				w.Abort()
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want invalid %q", err, tt.want)
			}
			if f := blobFiles(t, s); len(f) != 0 {
				t.Fatalf("blobs stored after rejection: %v", f)
			}
			if ings, _ := s.Ingests(ctx); len(ings) != 0 {
				t.Fatalf("ingest left: %+v", ings)
			}
		})
	}
}

func TestResumeAfterClose(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	dgst := digest.FromBytes(data)
	ref := "pull-" + dgst.String()

	w, err := s.Writer(ctx, ref, dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:4321])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ings, _ := s.Ingests(ctx)
	if len(ings) != 1 || ings[0].Ref != ref || ings[0].Offset != 4321 || ings[0].Expected != dgst {
		t.Fatalf("ingests = %+v", ings)
	}

	// A fresh Store on the same root (a restarted daemon) resumes.
	s2, err := Open(s.root)
	if err != nil {
		t.Fatal(err)
	}
	w, err = s2.Writer(ctx, ref, dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 4321 {
		t.Fatalf("resumed at %d", w.Offset())
	}
	w.Write(data[w.Offset():])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := s.ReadBlob(ctx, dgst)
	if !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
}

// A saved hash state that no longer matches the data is ignored: the data
// is re-hashed.
func TestResumeWithStaleHashState(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("xyz"), 5000)
	dgst := digest.FromBytes(data)
	w, _ := s.Writer(ctx, "r", dgst, int64(len(data)))
	w.Write(data[:9000])
	w.Close()
	if _, err := os.Stat(filepath.Join(s.ingestDir("r"), "hashstate")); err != nil {
		t.Fatalf("no hash state saved: %v", err)
	}
	os.Truncate(filepath.Join(s.ingestDir("r"), "data"), 4000)
	w, err := s.Writer(ctx, "r", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 4000 {
		t.Fatalf("offset %d", w.Offset())
	}
	w.Write(data[4000:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestResumeWithDifferentExpectationRestarts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, _ := s.Writer(ctx, "r", digest.FromString("aaaa"), 4)
	w.Write([]byte("aa"))
	w.Close()
	w, err := s.Writer(ctx, "r", digest.FromString("bbbb"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if w.Offset() != 0 {
		t.Fatalf("offset %d, want restart at 0", w.Offset())
	}
}

// An ingest started without knowing its digest (a registry's chunked
// upload) resumes when the last request names it, and is verified.
func TestResumeLearnsExpectation(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("chunk one, chunk two")
	for _, chunk := range [][]byte{data[:9], data[9:]} {
		w, err := s.Writer(ctx, "upload-1", "", -1)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(chunk)
		w.Close()
	}
	dgst := digest.FromBytes(data)
	w, err := s.Writer(ctx, "upload-1", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != int64(len(data)) {
		t.Fatalf("offset %d", w.Offset())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A wrong final digest is caught.
	for _, chunk := range [][]byte{data[:9], data[9:]} {
		w, _ := s.Writer(ctx, "upload-2", "", -1)
		w.Write(chunk)
		w.Close()
	}
	w, _ = s.Writer(ctx, "upload-2", digest.FromString("other"), int64(len(data)))
	if err := w.Commit(ctx); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Commit = %v", err)
	}
	// An upload of a blob that exists is dropped with AbortIngest.
	w, _ = s.Writer(ctx, "upload-3", "", -1)
	w.Write(data)
	w.Close()
	if _, err := s.Writer(ctx, "upload-3", dgst, int64(len(data))); !errors.Is(err, ErrExists) {
		t.Fatalf("Writer = %v", err)
	}
	if err := s.AbortIngest(ctx, "upload-3"); err != nil {
		t.Fatal(err)
	}
	if err := s.AbortIngest(ctx, "never-existed"); err != nil {
		t.Fatal(err)
	}
	if ings, _ := s.Ingests(ctx); len(ings) != 0 {
		t.Fatalf("ingests left: %+v", ings)
	}
}

// A crash (simulated by leaving the data file and meta behind without
// Close) never leaves anything under blobs/; the ingest resumes.
func TestCrashLeavesOnlyIngest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("partial then complete")
	dgst := digest.FromBytes(data)
	w, _ := s.Writer(ctx, "r", dgst, int64(len(data)))
	w.Write(data[:7])
	// "crash": drop file descriptors without Close semantics.
	w.data.Close()
	w.lock.Close()
	if f := blobFiles(t, s); len(f) != 0 {
		t.Fatalf("blob visible before commit: %v", f)
	}
	if _, err := s.Info(ctx, dgst); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Info = %v", err)
	}
	w2, err := s.Writer(ctx, "r", dgst, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w2.Write(data[w2.Offset():])
	if err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestExists(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("x")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 1}
	if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
		t.Fatalf("second WriteBlob: %v", err)
	}
	_, err := s.Writer(ctx, "again", desc.Digest, 1)
	if !errors.Is(err, ErrExists) || !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Writer on existing = %v", err)
	}
	// Unknown expected digest: detected at Commit.
	w, err := s.Writer(ctx, "build", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit of existing = %v", err)
	}
	if ings, _ := s.Ingests(ctx); len(ings) != 0 {
		t.Fatalf("ingest left: %+v", ings)
	}
}

func TestWriteBlobRejectsBadData(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	desc := ocispec.Descriptor{Digest: digest.FromString("good"), Size: 4}
	err := s.WriteBlob(ctx, strings.NewReader("evil"), desc)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("WriteBlob = %v", err)
	}
	if err := s.WriteBlob(ctx, strings.NewReader("good and then some"), desc); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("WriteBlob of overlong data = %v", err)
	}
	if f := blobFiles(t, s); len(f) != 0 {
		t.Fatalf("stored: %v", f)
	}
	if ings, _ := s.Ingests(ctx); len(ings) != 0 {
		t.Fatalf("ingest left: %+v", ings)
	}
}

// Writers on one ref wait for each other: exactly one commits, the others
// see ErrExists, and no blob is ever corrupt.
func TestConcurrentWritersSameRef(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newStore(t)
	data := bytes.Repeat([]byte("abc"), 100000)
	dgst := digest.FromBytes(data)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, "same", dgst, int64(len(data)))
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			for off := w.Offset(); off < int64(len(data)); off += 4096 {
				end := min(off+4096, int64(len(data)))
				if _, err := w.Write(data[off:end]); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = w.Commit(ctx)
		}()
	}
	// Meanwhile readers of the blob must always see whole content.
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrExists):
		default:
			t.Errorf("writer: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d writers committed, want 1", ok)
	}
	got, _ := s.ReadBlob(ctx, dgst)
	if !bytes.Equal(got, data) {
		t.Fatal("blob corrupt")
	}
}

func TestWaitingWriterHonoursContext(t *testing.T) {
	s := newStore(t)
	w, err := s.Writer(context.Background(), "busy", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Writer(ctx, "busy", "", -1)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second writer = %v, want conflict", err)
	}
}

// Readers of a blob keep working while another writer commits the same
// digest (which then reports ErrExists) and while it is deleted.
func TestReadersDuringCommitAndDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("z"), 1<<16)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	r, err := s.ReaderAt(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, _ := s.Writer(ctx, "other", "", -1)
	w.Write(data)
	if err := w.Commit(ctx); !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reader after delete: %v", err)
	}
}

func TestWalkDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := map[digest.Digest]int64{}
	for _, c := range []string{"a", "bb", "ccc"} {
		desc := ocispec.Descriptor{Digest: digest.FromString(c), Size: int64(len(c))}
		if err := s.WriteBlob(ctx, strings.NewReader(c), desc); err != nil {
			t.Fatal(err)
		}
		want[desc.Digest] = desc.Size
	}
	// Junk under blobs/ is ignored.
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "not-a-digest"), nil, 0o600)
	got := map[digest.Digest]int64{}
	if err := s.Walk(ctx, func(i Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
	for d, sz := range want {
		if got[d] != sz {
			t.Fatalf("Walk[%s] = %d, want %d", d, got[d], sz)
		}
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(Info) error { return stop }); err != stop {
		t.Fatalf("Walk error = %v", err)
	}
	d := digest.FromString("bb")
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
	if _, err := s.Info(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Info after delete = %v", err)
	}
}

func TestMalformedDigestsRejected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// A sentinel file the injections aim at.
	os.WriteFile(filepath.Join(filepath.Dir(s.root), "victim"), []byte("keep"), 0o600)
	bad := []digest.Digest{
		"",
		"sha256:../../victim",
		"sha256:../../../etc/passwd",
		"sha256/../../victim",
		"../victim",
		digest.Digest("sha256:" + strings.Repeat("a", 63)),
		digest.Digest("sha256:" + strings.Repeat("A", 64)),
		digest.Digest("sha256:" + strings.Repeat("a", 65)),
		digest.Digest("sha256:" + strings.Repeat("a", 62) + "/a"),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		digest.Digest("sha384:" + strings.Repeat("a", 96)),
		digest.Digest("sha512:" + strings.Repeat("a", 64)),
		digest.Digest("sha256:" + strings.Repeat("a", 63) + "\x00"),
	}
	for _, d := range bad {
		if _, err := s.Info(ctx, d); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Info(%q) = %v", d, err)
		}
		if _, err := s.Open(ctx, d); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Open(%q) = %v", d, err)
		}
		if err := s.Delete(ctx, d); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Delete(%q) = %v", d, err)
		}
		if d != "" {
			if _, err := s.Writer(ctx, "r", d, -1); !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("Writer(%q) = %v", d, err)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(s.root), "victim")); err != nil || string(b) != "keep" {
		t.Fatal("victim touched")
	}
	good := []digest.Digest{
		digest.FromString("x"),
		digest.SHA512.FromString("x"),
	}
	for _, d := range good {
		if err := ValidateDigest(d); err != nil {
			t.Errorf("ValidateDigest(%s) = %v", d, err)
		}
	}
}

func TestSHA512Blob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	desc := ocispec.Descriptor{Digest: digest.SHA512.FromString("x"), Size: 1}
	if err := s.WriteBlob(ctx, strings.NewReader("x"), desc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestCleanIngests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	old, _ := s.Writer(ctx, "old", "", -1)
	old.Write([]byte("stale"))
	old.Close()
	past := time.Now().Add(-2 * time.Hour)
	dir := s.ingestDir("old")
	for _, n := range []string{"data", "meta.json", "lock", ""} {
		os.Chtimes(filepath.Join(dir, n), past, past)
	}
	recent, _ := s.Writer(ctx, "recent", "", -1)
	recent.Write([]byte("fresh"))
	recent.Close()
	busy, _ := s.Writer(ctx, "busy", "", -1)
	defer busy.Abort()
	busyDir := s.ingestDir("busy")
	for _, n := range []string{"data", "meta.json", "lock", ""} {
		os.Chtimes(filepath.Join(busyDir, n), past, past)
	}

	if err := s.CleanIngests(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	ings, _ := s.Ingests(ctx)
	for _, i := range ings {
		refs[i.Ref] = true
	}
	if refs["old"] || !refs["recent"] || !refs["busy"] {
		t.Fatalf("after clean: %v", refs)
	}
}

func FuzzDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:" + strings.Repeat("a", 64),
		"sha256:../../x",
		"sha512:" + strings.Repeat("0", 128),
		"sha256:" + strings.Repeat("a", 63) + "/",
		"",
		":",
	} {
		f.Add(s)
	}
	root := filepath.Join(f.TempDir(), "content")
	s, err := Open(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d := digest.Digest(in)
		p, err := s.blobPath(d)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		rel, err := filepath.Rel(filepath.Join(root, "blobs"), p)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, string(filepath.Separator)) != 1 {
			t.Fatalf("digest %q maps to %q outside blobs/", in, p)
		}
		if filepath.Clean(p) != p {
			t.Fatalf("digest %q maps to unclean path %q", in, p)
		}
	})
}
