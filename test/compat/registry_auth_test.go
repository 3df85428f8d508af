package compat

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// authProxy fronts a registry with authentication: "basic" answers 401
// with a Basic challenge unless the request carries user:pass; "token"
// answers with a Bearer challenge whose realm (on the proxy) hands out a
// token for user:pass, and accepts only that token.
func authProxy(t *testing.T, registry, mode, user, pass string) string {
	t.Helper()
	target, _ := url.Parse("http://" + registry)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	tokens := map[string]bool{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "token" && r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
				return
			}
			b := make([]byte, 16)
			rand.Read(b)
			tok := hex.EncodeToString(b)
			mu.Lock()
			tokens[tok] = true
			mu.Unlock()
			fmt.Fprintf(w, `{"token":%q}`, tok)
			return
		}
		authorized := false
		switch mode {
		case "basic":
			u, p, ok := r.BasicAuth()
			authorized = ok && u == user && p == pass
		case "token":
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			authorized = ok && tokens[tok]
			mu.Unlock()
		}
		if !authorized {
			if mode == "basic" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			} else {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry"`, srv.URL))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestDockerRegistryAuth: with a registry behind Basic and behind Bearer
// token authentication, docker login (checked by berth), push and pull
// work with the credentials and fail without them.
func TestDockerRegistryAuth(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	reg, _ := startRegistry(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	for _, mode := range []string{"basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			host := authProxy(t, reg, mode, "alice", "s3cret")
			cfg := t.TempDir() // one docker config for the whole login session
			dk := func(args ...string) (string, error) {
				cmd := exec.Command("docker", args...)
				cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+cfg)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			ref := host + "/private/bb:1"
			must(t, d, "tag", "busybox", ref)
			if out, err := dk("push", ref); err == nil {
				t.Fatalf("push without login worked:\n%s", out)
			}
			if out, err := dk("login", "-u", "alice", "-p", "wrong", host); err == nil {
				t.Fatalf("login with a wrong password worked:\n%s", out)
			}
			if out, err := dk("login", "-u", "alice", "-p", "s3cret", host); err != nil || !strings.Contains(out, "Login Succeeded") {
				t.Fatalf("login: %v\n%s", err, out)
			}
			if out, err := dk("push", ref); err != nil {
				t.Fatalf("push after login: %v\n%s", err, out)
			}
			must(t, d, "rmi", ref)
			if out, err := dk("pull", ref); err != nil {
				t.Fatalf("pull after login: %v\n%s", err, out)
			}
			dk("logout", host)
			must(t, d, "rmi", ref)
			if out, err := dk("pull", ref); err == nil || !strings.Contains(out, "login") {
				t.Fatalf("pull without credentials: %v\n%s", err, out)
			}
		})
	}
}
