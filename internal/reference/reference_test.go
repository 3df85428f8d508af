package reference

import (
	"strings"
	"testing"

	distref "github.com/distribution/reference"
)

var corpus = []string{
	"busybox", "busybox:latest", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox:1",
	"ghcr.io/x/y:1", "localhost/foo", "localhost:5000/foo/bar:tag", "LocalHost:5000/foo", "Foo/bar", "foo/Bar",
	"[::1]:5000/foo", "[::1]/foo:t", "[fe80::1%eth0]/foo", "127.0.0.1:5000/a_b/c__d/e--f/g.h:tag",
	"a@sha256:" + strings.Repeat("a", 64), "a:t@sha256:" + strings.Repeat("b", 64),
	"a@sha256:" + strings.Repeat("A", 64), "a@sha512:" + strings.Repeat("a", 128), "a@md5:" + strings.Repeat("a", 32),
	"a@sha256:abc", strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 64), "", ":", "@", "/", "a/", "/a",
	"a//b", "a:", "a:-x", "a:" + strings.Repeat("x", 128), "a:" + strings.Repeat("x", 129), "a___b", "a..b", "a.-b",
	"-a", "a-", "host:/a", "host:12a/b", "ho_st.com/a", "-host.com/a", "host-.com/a", "a.b.c:1/d", "UPPER",
	strings.Repeat("a/", 130) + "a", "a b", "a\tb", "a/b:c:d", "a@b@c", "docker.io/library/a/b", "library/a/b",
}

// FuzzAgainstDistribution checks ParseNormalizedNamed and Parse against
// distribution/reference, the implementation this package replaces: same
// acceptance, same errors, same parts and the same familiar form.
func FuzzAgainstDistribution(f *testing.F) {
	for _, s := range corpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		compare(t, s)
	})
}

func TestAgainstDistribution(t *testing.T) {
	for _, s := range corpus {
		compare(t, s)
	}
}

func compare(t *testing.T, s string) {
	t.Helper()
	for _, normalized := range []bool{true, false} {
		var (
			got       Named
			want      distref.Named
			gerr, err error
		)
		if normalized {
			got, gerr = ParseNormalizedNamed(s)
			want, err = distref.ParseNormalizedNamed(s)
		} else {
			var r distref.Reference
			got, gerr = Parse(s)
			if r, err = distref.Parse(s); err == nil {
				var ok bool
				if want, ok = r.(distref.Named); !ok {
					continue // a bare digest: distribution's Parse has it, this package does not
				}
			}
		}
		if (gerr == nil) != (err == nil) || gerr != nil && gerr.Error() != err.Error() {
			t.Fatalf("%q (normalized %v): error %v, distribution/reference: %v", s, normalized, gerr, err)
		}
		if err != nil {
			continue
		}
		type parts struct{ str, name, domain, path, familiar, familiarName, tag, digest string }
		g := parts{got.String(), got.Name(), Domain(got), Path(got), FamiliarString(got), FamiliarName(got), "", ""}
		w := parts{want.String(), want.Name(), distref.Domain(want), distref.Path(want), distref.FamiliarString(want), distref.FamiliarName(want), "", ""}
		if x, ok := got.(Tagged); ok {
			g.tag = x.Tag()
		}
		if x, ok := want.(distref.Tagged); ok {
			w.tag = x.Tag()
		}
		if x, ok := got.(Digested); ok {
			g.digest = x.Digest().String()
		}
		if x, ok := want.(distref.Digested); ok {
			w.digest = x.Digest().String()
		}
		if g != w {
			t.Fatalf("%q (normalized %v):\n got %+v\nwant %+v", s, normalized, g, w)
		}
		if a, b := TagNameOnly(got).String(), distref.TagNameOnly(want).String(); a != b {
			t.Fatalf("%q TagNameOnly: %s, want %s", s, a, b)
		}
		if a, b := IsNameOnly(got), distref.IsNameOnly(want); a != b {
			t.Fatalf("%q IsNameOnly: %v, want %v", s, a, b)
		}
		if a, b := TrimNamed(got).String(), distref.TrimNamed(want).String(); a != b {
			t.Fatalf("%q TrimNamed: %s, want %s", s, a, b)
		}
		for _, tag := range []string{"v1", "-bad", ""} {
			a, aerr := WithTag(got, tag)
			b, berr := distref.WithTag(want, tag)
			if (aerr == nil) != (berr == nil) || aerr == nil && a.String() != b.String() {
				t.Fatalf("%q WithTag(%q): %v %v, want %v %v", s, tag, a, aerr, b, berr)
			}
		}
	}
}
