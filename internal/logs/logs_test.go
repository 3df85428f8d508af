package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/internal/errdefs"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    options
		wantErr string
	}{
		{"default is json-file", Config{}, options{driver: JSONFile, maxFile: 1}, ""},
		{"rotation", Config{Type: JSONFile, Config: map[string]string{"max-size": "10m", "max-file": "3"}}, options{driver: JSONFile, maxSize: 10 << 20, maxFile: 3}, ""},
		{"local defaults", Config{Type: Local}, options{driver: Local, maxSize: 20 << 20, maxFile: 5, compress: true}, ""},
		{"none", Config{Type: None}, options{driver: None, maxFile: 1}, ""},
		{"unknown driver", Config{Type: "syslog"}, options{}, `log driver "syslog" is not supported`},
		{"unknown opt", Config{Config: map[string]string{"max-sise": "1m"}}, options{}, `unknown log opt "max-sise"`},
		{"bad size", Config{Config: map[string]string{"max-size": "lots"}}, options{}, `log opt max-size="lots"`},
		{"zero files", Config{Config: map[string]string{"max-size": "1m", "max-file": "0"}}, options{}, "must be at least 1"},
		{"max-file alone", Config{Config: map[string]string{"max-file": "3"}}, options{}, "max-file requires max-size"},
		{"none with opts", Config{Type: None, Config: map[string]string{"max-size": "1m"}}, options{}, "takes no options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("err = %v, want invalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "1k": 1024, "10m": 10 << 20, "1g": 1 << 30, "1.5k": 1536, "2MB": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1", "ten"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestJSONLineMatchesEncodingJSON: the hand-rolled encoder writes exactly
// what encoding/json would, so every json-file reader understands it.
func TestJSONLineMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"hello\n", "", "tab\tquote\"back\\", "<html>&amp;", "\x00\x1f\x7f", "caf\xc3\xa9 \xff\xfe", "\u2028\u2029", "日本語\n"} {
		checkJSONLine(t, s)
	}
}

func checkJSONLine(t *testing.T, s string) {
	t.Helper()
	got := encodeJSON(nil, Entry{Stream: "stderr", Line: []byte(s), Time: t0})
	want, _ := json.Marshal(struct {
		Log    string `json:"log"`
		Stream string `json:"stream"`
		Time   string `json:"time"`
	}{s, "stderr", t0.Format(time.RFC3339Nano)})
	if string(got) != string(want)+"\n" {
		t.Fatalf("encodeJSON(%q)\n got %s\nwant %s", s, got, want)
	}
}

func FuzzJSONLine(f *testing.F) {
	f.Add("hello\n")
	f.Add("\xff<\u2028")
	f.Fuzz(func(t *testing.T, s string) { checkJSONLine(t, s) })
}

func TestCopySplitsLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	in := "one\ntwo\n" + long + "\ntail"
	var got []Entry
	err := Copy(strings.NewReader(in), "stdout", func(e Entry) error {
		e.Line = append([]byte(nil), e.Line...)
		got = append(got, e)
		return nil
	}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var rebuilt strings.Builder
	for _, e := range got {
		lines = append(lines, fmt.Sprintf("%d:%v", len(e.Line), e.Partial))
		rebuilt.Write(e.Line)
	}
	want := []string{"4:false", "4:false", fmt.Sprintf("%d:true", MaxLine), "11:false", "4:true"}
	if strings.Join(lines, " ") != strings.Join(want, " ") {
		t.Fatalf("entries = %v, want %v", lines, want)
	}
	if rebuilt.String() != in {
		t.Fatal("entries do not add up to the input")
	}
}

// TestLineWriterChunking feeds the same stream in chunks of every size
// from 1 byte up: the entries must not depend on how the bytes arrived.
func TestLineWriterChunking(t *testing.T) {
	in := "a\nbb\n" + strings.Repeat("y", MaxLine+3) + "\nprompt# "
	var want []string
	for step := 1; step <= 9000; step = step*3 + 1 {
		var got []string
		w := NewLineWriter("stdout", func(e Entry) error {
			got = append(got, fmt.Sprintf("%d:%v", len(e.Line), e.Partial))
			return nil
		}, func() time.Time { return t0 })
		for i := 0; i < len(in); i += step {
			w.Write([]byte(in[i:min(i+step, len(in))]))
		}
		w.Close()
		if want == nil {
			want = got
			if strings.Join(got, " ") != fmt.Sprintf("2:false 3:false %d:true 4:false 8:true", MaxLine) {
				t.Fatalf("entries = %v", got)
			}
		} else if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("step %d: entries %v differ from %v", step, got, want)
		}
	}
}

func write(t *testing.T, d Driver, entries ...Entry) {
	t.Helper()
	for _, e := range entries {
		if err := d.Write(e); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, dir string, cfg Config, opts ReadOptions) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), dir, "c1", cfg, opts, func(e Entry) error {
		out = append(out, e.Stream[3:]+":"+string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entry(i int, stream string) Entry {
	return Entry{Stream: stream, Line: []byte(fmt.Sprintf("line %d\n", i)), Time: t0.Add(time.Duration(i) * time.Second)}
}

func TestRoundTripAndFilters(t *testing.T) {
	for _, driver := range []string{JSONFile, Local} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Type: driver}
			d, err := Open(dir, "c1", cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 6; i++ {
				s := "stdout"
				if i%2 == 1 {
					s = "stderr"
				}
				write(t, d, entry(i, s))
			}
			d.Close()
			all := ReadOptions{Stdout: true, Stderr: true, Tail: -1}
			if got := readAll(t, dir, cfg, all); len(got) != 6 || got[0] != "out:line 0\n" || got[5] != "err:line 5\n" {
				t.Fatalf("all = %q", got)
			}
			onlyErr := all
			onlyErr.Stdout = false
			if got := readAll(t, dir, cfg, onlyErr); len(got) != 3 || got[0] != "err:line 1\n" {
				t.Fatalf("stderr only = %q", got)
			}
			tail := all
			tail.Tail = 2
			if got := readAll(t, dir, cfg, tail); strings.Join(got, "") != "out:line 4\nerr:line 5\n" {
				t.Fatalf("tail 2 = %q", got)
			}
			window := all
			window.Since, window.Until = t0.Add(2*time.Second), t0.Add(3*time.Second)
			if got := readAll(t, dir, cfg, window); strings.Join(got, "") != "out:line 2\nerr:line 3\n" {
				t.Fatalf("since/until = %q", got)
			}
			none := all
			none.Tail = 0
			if got := readAll(t, dir, cfg, none); len(got) != 0 {
				t.Fatalf("tail 0 = %q", got)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	for _, compress := range []string{"false", "true"} {
		t.Run("compress="+compress, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Type: JSONFile, Config: map[string]string{"max-size": "200", "max-file": "3", "compress": compress}}
			d, err := Open(dir, "c1", cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				write(t, d, entry(i, "stdout"))
			}
			d.Close()
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			if len(files) != 3 {
				t.Fatalf("files = %v, want the live one and 2 rotated", files)
			}
			got := readAll(t, dir, cfg, ReadOptions{Stdout: true, Tail: -1})
			if len(got) == 0 || got[len(got)-1] != "out:line 19\n" {
				t.Fatalf("read after rotation = %q", got)
			}
			for i := 1; i < len(got); i++ {
				if got[i-1] >= got[i] && len(got[i-1]) == len(got[i]) {
					t.Fatalf("entries out of order: %q", got)
				}
			}
		})
	}
}

func TestTornLastRecordIsNotRead(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{}
	d, _ := Open(dir, "c1", cfg)
	write(t, d, entry(1, "stdout"))
	d.Close()
	f, _ := os.OpenFile(Path(dir, "c1", cfg), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"log":"half`)
	f.Close()
	if got := readAll(t, dir, cfg, ReadOptions{Stdout: true, Tail: -1}); len(got) != 1 {
		t.Fatalf("got %q: a record still being written must not be read", got)
	}
}

func TestFollow(t *testing.T) {
	for _, driver := range []string{JSONFile, Local} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Type: driver, Config: map[string]string{"max-size": "300", "max-file": "2"}}
			d, err := Open(dir, "c1", cfg)
			if err != nil {
				t.Fatal(err)
			}
			write(t, d, entry(0, "stdout"))
			done := make(chan struct{})
			var mu sync.Mutex
			var got bytes.Buffer
			errc := make(chan error, 1)
			go func() {
				errc <- Read(context.Background(), dir, "c1", cfg, ReadOptions{Stdout: true, Tail: -1, Follow: true, Done: done, PollInterval: 5 * time.Millisecond}, func(e Entry) error {
					mu.Lock()
					got.Write(e.Line)
					mu.Unlock()
					return nil
				})
			}()
			// Writes that cross several rotations while the reader follows.
			for i := 1; i < 30; i++ {
				write(t, d, entry(i, "stdout"))
				time.Sleep(2 * time.Millisecond)
			}
			d.Close()
			close(done)
			select {
			case err := <-errc:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("follow did not end after the container stopped")
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasPrefix(got.String(), "line 0\n") || !strings.HasSuffix(got.String(), "line 29\n") {
				t.Fatalf("followed output = %q", got.String())
			}
			for i := 0; i < 30; i++ {
				if !strings.Contains(got.String(), fmt.Sprintf("line %d\n", i)) {
					t.Fatalf("follow lost line %d across rotation: %q", i, got.String())
				}
			}
		})
	}
}

func TestFollowStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	d, _ := Open(dir, "c1", Config{})
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Read(ctx, dir, "c1", Config{}, ReadOptions{Stdout: true, Tail: -1, Follow: true}, func(Entry) error { return nil })
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoneDriverCannotBeRead(t *testing.T) {
	err := Read(context.Background(), t.TempDir(), "c1", Config{Type: None}, ReadOptions{Stdout: true, Tail: -1}, func(Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "does not support reading") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkJSONFileWrite(b *testing.B) {
	d, err := Open(b.TempDir(), "c1", Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	e := Entry{Stream: "stdout", Line: []byte("a typical log line of about eighty bytes, with some words in it and a newline\n"), Time: t0}
	b.SetBytes(int64(len(e.Line)))
	for b.Loop() {
		d.Write(e)
	}
}
