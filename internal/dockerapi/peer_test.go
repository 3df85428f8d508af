package dockerapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth/berth/internal/errdefs"
)

// TestOpenClientDir: a client's directory is opened only for a root peer
// on the unix socket, by absolute path, in the client's root.
func TestOpenClientDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		root, err := openClientDir(r, "contextdir", r.URL.Query().Get("p"))
		if err != nil {
			http.Error(w, err.Error(), errdefs.HTTPStatus(err))
			return
		}
		defer root.Close()
		if _, err := root.Stat("f"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ConnContext: ConnContext}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	status := func(p string) int {
		t.Helper()
		resp, err := c.Get("http://x/?p=" + url.QueryEscape(p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if os.Geteuid() != 0 {
		if got := status(dir); got != http.StatusForbidden {
			t.Fatalf("non-root client: status %d, want 403", got)
		}
		return
	}
	if got := status(dir); got != http.StatusOK {
		t.Fatalf("root client: status %d", got)
	}
	if got := status("relative/dir"); got != http.StatusBadRequest {
		t.Fatalf("relative path: status %d, want 400", got)
	}
	if got := status(filepath.Join(dir, "missing")); got != http.StatusBadRequest {
		t.Fatalf("missing dir: status %d, want 400", got)
	}
	// Not over a unix socket: no peer to trust.
	ts := httptest.NewServer(handler)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/?p=" + url.QueryEscape(dir))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("tcp client: status %d, want 400", resp.StatusCode)
	}
}
