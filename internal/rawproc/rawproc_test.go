package rawproc

import (
	"os"
	"slices"
	"testing"
)

func TestSplitNUL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"berth\x00runtime\x00run\x00", []string{"berth", "runtime", "run"}},
		{"berth\x00\x00x", []string{"berth", "", "x"}},
		{"berth", []string{"berth"}},
		{"", nil},
	} {
		if got := SplitNUL([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("SplitNUL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestArgs(t *testing.T) {
	if got := Args(); !slices.Equal(got, os.Args) {
		t.Fatalf("Args() = %q, os.Args = %q", got, os.Args)
	}
	if ReadFile("/nonexistent", 10) != nil {
		t.Fatal("ReadFile of a missing file is not nil")
	}
}
