package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/dockerapi"
	"github.com/berth/berth/internal/errdefs"
)

// serve runs the real API server on a unix socket in a temp dir.
func serve(t *testing.T, h http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestVersionAgainstRealServer(t *testing.T) {
	c := serve(t, dockerapi.New(dockerapi.Config{}))
	ctx := context.Background()
	v, err := c.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != api.MaxVersion {
		t.Fatalf("APIVersion = %q", v.APIVersion)
	}
	if got, _ := c.APIVersion(ctx); got != api.MaxVersion {
		t.Fatalf("negotiated %q, want %q", got, api.MaxVersion)
	}
}

// TestNegotiatesDownToOlderDaemon: a daemon older than the client refuses
// the first request as too new (as Docker does); the client then asks
// /_ping and sends it again at the daemon's version, and keeps that.
func TestNegotiatesDownToOlderDaemon(t *testing.T) {
	var paths []string
	c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Api-Version", "1.43")
		if v, ok := strings.CutPrefix(r.URL.Path, "/v"); ok && !strings.HasPrefix(v, "1.43/") {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"message":"client version %s is too new. Maximum supported API version is 1.43"}`, strings.Split(v, "/")[0])
			return
		}
		w.Write([]byte("{}"))
	}))
	for range 2 {
		if _, err := c.ServerVersion(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/v" + api.MaxVersion + "/version", "/_ping", "/v1.43/version", "/v1.43/version"}
	if !slices.Equal(paths, want) {
		t.Fatalf("requests = %v, want %v", paths, want)
	}
}

// TestFirstRequestNeedsNoPing: against berth's server the first request
// goes out at the client's version and teaches it the version and the
// features: no /_ping round trip.
func TestFirstRequestNeedsNoPing(t *testing.T) {
	var paths []string
	srv := dockerapi.New(dockerapi.Config{})
	c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		srv.ServeHTTP(w, r)
	}))
	ctx := context.Background()
	if _, err := c.ServerVersion(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.HasFeature(ctx, "contextdir") {
		t.Error("the features were not learnt from the answer")
	}
	if want := []string{"/v" + api.MaxVersion + "/version"}; !slices.Equal(paths, want) {
		t.Fatalf("requests = %v, want %v", paths, want)
	}
}

func TestErrorsKeepMessageAndClass(t *testing.T) {
	c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"message":"No such container: web"}`))
	}))
	_, err := c.ServerVersion(context.Background())
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such container: web" {
		t.Fatalf("err = %v", err)
	}
}

func TestNoDaemonSaysWhatToDo(t *testing.T) {
	c, err := New("unix://" + filepath.Join(t.TempDir(), "absent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ping(context.Background())
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestBadHost(t *testing.T) {
	for _, h := range []string{"", "nowhere", "ftp://x", "unix://"} {
		if _, err := New(h); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("New(%q) = %v, want invalid", h, err)
		}
	}
}

func TestHostFromEnv(t *testing.T) {
	t.Setenv("BERTH_HOST", "")
	t.Setenv("DOCKER_HOST", "")
	if got := HostFromEnv(); got != api.DefaultHost {
		t.Errorf("default = %q", got)
	}
	t.Setenv("DOCKER_HOST", "unix:///d.sock")
	if got := HostFromEnv(); got != "unix:///d.sock" {
		t.Errorf("DOCKER_HOST: %q", got)
	}
	t.Setenv("BERTH_HOST", "unix:///b.sock")
	if got := HostFromEnv(); got != "unix:///b.sock" {
		t.Errorf("BERTH_HOST must win over DOCKER_HOST: %q", got)
	}
}
