package dockerapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/system"

	"github.com/berth/berth/api"
)

func do(t *testing.T, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	New(Config{}).ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPing(t *testing.T) {
	for _, path := range []string{"/_ping", "/v1.41/_ping", "/v1.50/_ping"} {
		r := do(t, "GET", path)
		if r.StatusCode != 200 || body(t, r) != "OK" {
			t.Errorf("GET %s = %d, want 200 OK", path, r.StatusCode)
		}
		if got := r.Header.Get("Api-Version"); got != api.MaxVersion {
			t.Errorf("GET %s: Api-Version = %q, want %q", path, got, api.MaxVersion)
		}
		if got := r.Header.Get("Ostype"); got != "linux" {
			t.Errorf("GET %s: Ostype = %q", path, got)
		}
	}
	if r := do(t, "HEAD", "/_ping"); r.StatusCode != 200 || r.Header.Get("Api-Version") == "" {
		t.Errorf("HEAD /_ping = %d, headers %v", r.StatusCode, r.Header)
	}
}

func TestVersion(t *testing.T) {
	r := do(t, "GET", "/v1.45/version")
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	var v system.VersionResponse
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != api.MaxVersion || v.MinAPIVersion != api.MinVersion || v.Os != "linux" {
		t.Fatalf("version = %+v", v)
	}
	if len(v.Components) != 1 || v.Components[0].Name != "Engine" || v.Components[0].Details["ApiVersion"] != api.MaxVersion {
		t.Fatalf("the docker CLI reads the Engine component; got %+v", v.Components)
	}
}

func TestVersionNegotiationErrors(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"/v1.99/version", "client version 1.99 is too new. Maximum supported API version is " + api.MaxVersion},
		{"/v1.12/version", "client version 1.12 is too old. Minimum supported API version is " + api.MinVersion},
	}
	for _, tt := range tests {
		r := do(t, "GET", tt.path)
		var m struct{ Message string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != 400 || !strings.HasPrefix(m.Message, tt.want) {
			t.Errorf("GET %s = %d %q, want 400 %q", tt.path, r.StatusCode, m.Message, tt.want)
		}
	}
}

func TestUnknownRouteIs404(t *testing.T) {
	r := do(t, "GET", "/v1.41/nonsense")
	if r.StatusCode != 404 || !strings.Contains(body(t, r), "page not found") {
		t.Fatalf("unknown route = %d", r.StatusCode)
	}
}
