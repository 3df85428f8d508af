package api

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.41", "1.41", 0},
		{"1.41", "1.50", -1},
		{"1.50", "1.9", 1},
		{"1.5", "1.50", -1},
		{"2", "1.99", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	if CompareVersions(MinVersion, MaxVersion) >= 0 {
		t.Fatalf("MinVersion %s must be below MaxVersion %s", MinVersion, MaxVersion)
	}
}
