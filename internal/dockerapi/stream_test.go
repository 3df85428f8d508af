package dockerapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth/berth/internal/errdefs"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		raw     string
		want    Filters
		wantErr string
	}{
		{"", Filters{}, ""},
		{`{"status":{"running":true,"exited":true},"label":{"a=b":true}}`, Filters{"status": {"exited", "running"}, "label": {"a=b"}}, ""},
		{`{"status":["running"]}`, Filters{"status": {"running"}}, ""},
		{`{"bogus":{"x":true}}`, nil, "invalid filter 'bogus'"},
		{`not json`, nil, "invalid filters"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/containers/json?filters="+urlQueryEscape(tt.raw), nil)
		got, err := parseFilters(r, "status", "label")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("%s: err = %v, want %q", tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%s: got %v, %v", tt.raw, got, err)
			continue
		}
		for k, v := range tt.want {
			if strings.Join(got[k], ",") != strings.Join(v, ",") {
				t.Errorf("%s: %s = %v, want %v", tt.raw, k, got[k], v)
			}
		}
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", " ", "%20", "[", "%5B", "]", "%5D", "=", "%3D")
	return r.Replace(s)
}

// TestMuxWriterRoundTripsThroughDockersReader frames with our writer and
// reads back with moby's own StdCopy, the reader the docker CLI uses.
func TestMuxWriterRoundTripsThroughDockersReader(t *testing.T) {
	var wire bytes.Buffer
	stdout, stderr := newMuxWriters(&wire)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); stdout.Write([]byte("out line\n")) }()
		go func() { defer wg.Done(); stderr.Write([]byte("err line\n")) }()
	}
	wg.Wait()
	var gotOut, gotErr bytes.Buffer
	if _, err := stdcopy.StdCopy(&gotOut, &gotErr, &wire); err != nil {
		t.Fatal(err)
	}
	if gotOut.String() != strings.Repeat("out line\n", 50) || gotErr.String() != strings.Repeat("err line\n", 50) {
		t.Fatalf("demultiplexed wrongly:\nout %q\nerr %q", gotOut.String(), gotErr.String())
	}
}

func TestHijack(t *testing.T) {
	for _, upgrade := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := hijack(w, r, true)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			line, _ := rw.ReadString('\n')
			rw.WriteString("echo: " + line)
			rw.Flush()
		}))
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		req := "POST /containers/x/attach HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		if upgrade {
			req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
		}
		conn.Write([]byte(req + "\r\nhello\n"))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus := 200
		if upgrade {
			wantStatus = 101
		}
		if resp.StatusCode != wantStatus || resp.Header.Get("Content-Type") != "application/vnd.docker.multiplexed-stream" {
			t.Fatalf("upgrade=%v: status %d, content type %q", upgrade, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "echo: hello\n" {
			t.Fatalf("upgrade=%v: raw stream = %q", upgrade, rest)
		}
		conn.Close()
		srv.Close()
	}
}

func TestProgressWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	p := newProgressWriter(rec)
	p.Send(jsonstream.Message{ID: "abc", Status: "Downloading", Progress: &jsonstream.Progress{Current: 500, Total: 1000}})
	p.Fail(errors.New("manifest unknown"))
	dec := json.NewDecoder(rec.Body)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if first["id"] != "abc" || !strings.Contains(first["progress"].(string), "500B/1kB") {
		t.Fatalf("first = %v", first)
	}
	if second["error"] != "manifest unknown" || second["errorDetail"].(map[string]any)["message"] != "manifest unknown" {
		t.Fatalf("second = %v", second)
	}
}

func TestProgressBar(t *testing.T) {
	if got := progressBar(0, 100); !strings.HasPrefix(got, "["+strings.Repeat(" ", 50)+"]") {
		t.Errorf("empty bar %q", got)
	}
	if got := progressBar(100, 100); !strings.HasPrefix(got, "["+strings.Repeat("=", 50)+"]") {
		t.Errorf("full bar %q", got)
	}
	if got := progressBar(50, 100); !strings.HasPrefix(got, "["+strings.Repeat("=", 24)+">") {
		t.Errorf("half bar %q", got)
	}
}
