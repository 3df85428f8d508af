package mountinfo

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:5 / /run/berth rw shared:2 - tmpfs tmpfs rw
31 30 0:6 / /run/berth/containers/a/rootfs rw - overlay overlay rw
32 31 0:7 / /run/berth/containers/a/rootfs/dev rw - tmpfs tmpfs rw
33 30 0:8 / /run/berth/with\040space rw - tmpfs tmpfs rw
34 22 0:9 / /run/berthx rw - tmpfs tmpfs rw
`

func TestUnder(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		self bool
		want []string
	}{
		{"/run/berth", false, []string{"/run/berth/containers/a/rootfs/dev", "/run/berth/containers/a/rootfs", "/run/berth/with space"}},
		{"/run/berth/", true, []string{"/run/berth/containers/a/rootfs/dev", "/run/berth/containers/a/rootfs", "/run/berth/with space", "/run/berth"}},
		{"/run/berth/containers/a/rootfs", false, []string{"/run/berth/containers/a/rootfs/dev"}},
		{"/nowhere", true, nil},
	} {
		got, err := under(strings.NewReader(sample), tc.dir, tc.self)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Under(%q, %v) (-want +got):\n%s", tc.dir, tc.self, diff)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/tab\011x`: "/tab\tx", `/back\134slash`: `/back\slash`,
		`/plain`: "/plain", `/bad\09x`: `/bad\09x`, `/end\04`: `/end\04`,
		`\`: `\`, `/x\040\040\040end`: "/x   end", `/tab\011x\134y`: "/tab\tx\\y", `/a\040b\011c`: "/a b\tc",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBusy: / is a mount point; a fresh temp dir has nothing mounted.
func TestBusy(t *testing.T) {
	if !Busy("/") {
		t.Error("Busy(/) = false")
	}
	if Busy(t.TempDir()) {
		t.Error("a fresh temp dir is busy")
	}
}
