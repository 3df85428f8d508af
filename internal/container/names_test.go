package container

import (
	"errors"
	"regexp"
	"testing"

	"github.com/berth/berth/internal/errdefs"
)

func TestValidateName(t *testing.T) {
	for in, want := range map[string]string{"web": "web", "/web": "web", "a1_b.c-d": "a1_b.c-d", "DB2": "DB2"} {
		if got, err := ValidateName(in); err != nil || got != want {
			t.Errorf("ValidateName(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "a", "_web", "-web", "we/b", "we b", "wéb", "//web"} {
		if _, err := ValidateName(in); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ValidateName(%q) accepted", in)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for i := 0; i < 100; i++ {
		id := NewID()
		if !hex64.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		if regexp.MustCompile(`^[0-9]+$`).MatchString(ShortID(id)) {
			t.Fatalf("short id %q is all digits", ShortID(id))
		}
		seen[id] = true
	}
}

func TestGenerateNameAvoidsTaken(t *testing.T) {
	taken := map[string]bool{}
	for i := 0; i < 500; i++ {
		n := GenerateName(func(s string) bool { return taken[s] })
		if taken[n] {
			t.Fatalf("generated a taken name %q", n)
		}
		if _, err := ValidateName(n); err != nil {
			t.Fatalf("generated an invalid name %q", n)
		}
		taken[n] = true
	}
}
