package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
			"Bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}},
		{`Basic realm="Registry Realm"`, "Basic", map[string]string{"realm": "Registry Realm"}},
		{`Bearer realm="a\"b", error=invalid_token`, "Bearer", map[string]string{"realm": `a"b`, "error": "invalid_token"}},
		{`Basic`, "Basic", map[string]string{}},
		{`Bearer realm="unterminated`, "Bearer", map[string]string{"realm": "unterminated"}},
	} {
		scheme, params := ParseChallenge(tc.in)
		if scheme != tc.scheme || !cmp.Equal(params, tc.params) {
			t.Errorf("ParseChallenge(%q) = %q %v, want %q %v", tc.in, scheme, params, tc.scheme, tc.params)
		}
	}
}

// FuzzParseChallenge: a registry's header is untrusted input.
func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://auth",service="reg",scope="repository:a:pull,push"`)
	f.Add(`Basic realm=x`)
	f.Add(`Bearer realm="\\"`)
	f.Add("Bearer \xff\xfe0=") // a key lower-cased into longer runes (found by fuzzing)
	f.Fuzz(func(t *testing.T, h string) {
		scheme, params := ParseChallenge(h)
		if len(scheme) > len(h) {
			t.Fatalf("scheme %q longer than the header", scheme)
		}
		for k, v := range params {
			if len(k)+len(v) > len(h) {
				t.Fatalf("param %q=%q longer than the header", k, v)
			}
		}
	})
}
