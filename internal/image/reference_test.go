package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth/berth/internal/errdefs"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want, familiar string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app", "docker.io/user/app:latest", "user/app:latest"},
		{"localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"},
		{"ghcr.io/o/r/deep:x", "ghcr.io/o/r/deep:x", "ghcr.io/o/r/deep:x"},
		{"busybox@" + dg, "docker.io/library/busybox@" + dg, "busybox@" + dg},
		{"hello", "docker.io/library/hello:latest", "hello:latest"},
	}
	for _, tt := range tests {
		ref, err := ParseReference(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if ref.String() != tt.want {
			t.Errorf("%s: got %s, want %s", tt.in, ref, tt.want)
		}
		if got := FamiliarString(ref); got != tt.familiar {
			t.Errorf("%s: familiar %s, want %s", tt.in, got, tt.familiar)
		}
		if got := FamiliarName(ref.String()); got != tt.familiar {
			t.Errorf("%s: FamiliarName %s", tt.in, got)
		}
	}
	for _, bad := range []string{
		"", "Busybox", "busybox:", ":tag", "a b", "-lead", "busybox@sha256:short",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"library/Busybox", "x:" + strings.Repeat("t", 200), "../etc", "busybox:tag@",
	} {
		_, err := ParseReference(bad)
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.HasPrefix(err.Error(), "invalid reference format") {
			t.Errorf("%q: got %v, want invalid reference format", bad, err)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c", "localhost:5000/x@sha256:" + strings.Repeat("a", 64), "Busy", "::", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("%q: unclassified error %v", s, err)
			}
			return
		}
		// Normalisation is idempotent, through both forms.
		again, err := ParseReference(ref.String())
		if err != nil || again.String() != ref.String() {
			t.Fatalf("%q → %q → %v, %v", s, ref, again, err)
		}
		fam, err := ParseReference(FamiliarString(ref))
		if err != nil || fam.String() != ref.String() {
			t.Fatalf("%q familiar %q → %v, %v", s, FamiliarString(ref), fam, err)
		}
	})
}
