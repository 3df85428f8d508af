package ociruntime

import "testing"

func TestOwnCgroupPath(t *testing.T) {
	own := parseOwnCgroups("9:name=systemd:/docker/c\n4:memory:/m/c\n2:cpu,cpuacct:/docker/c\n0::/\n")
	for _, tc := range []struct {
		h      cgroupHier
		want   string
		wantOK bool
	}{
		{cgroupHier{name: "systemd", opts: "xattr,name=systemd"}, "/docker/c", true},
		{cgroupHier{name: "memory", opts: "memory"}, "/m/c", true},
		{cgroupHier{name: "cpu,cpuacct", opts: "cpu,cpuacct"}, "/docker/c", true},
		{cgroupHier{name: "unified", v2: true}, "/", true},
		{cgroupHier{name: "pids", opts: "pids"}, "", false},
	} {
		got, ok := tc.h.ownPath(own)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: got %q %v, want %q %v", tc.h.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
