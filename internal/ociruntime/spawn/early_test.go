package spawn

import "testing"

func TestEarlyCreate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		root string // "" when it must answer no
	}{
		{[]string{"berth", "runtime", "run", "--bundle", "b", "id"}, DefaultRoot},
		{[]string{"/usr/bin/berth", "runtime", "--root", "/run/x", "create", "id"}, "/run/x"},
		{[]string{"berth", "runtime", "--root=/run/y", "--debug", "run", "id"}, "/run/y"},
		{[]string{"berth", "runtime", "--log", "/l", "--log-format", "json", "--root", "r", "create"}, "r"},
		{[]string{"/opt/berth-runc", "--rootless=auto", "--criu", "criu", "run", "id"}, DefaultRoot},
		// Not a create or run, or flags it does not know: no.
		{[]string{"berth", "runtime", "state", "id"}, ""},
		{[]string{"berth", "runtime", "--root"}, ""},
		{[]string{"berth", "runtime", "--systemd-cgroup", "run", "id"}, ""},
		{[]string{"berth", "runtime", "--debug=false", "run", "id"}, ""},
		{[]string{"berth", "runtime", "-h", "run"}, ""},
		{[]string{"berth", "run", "bb", "true"}, ""},
		{[]string{"berth", "runtime"}, ""},
		{[]string{"berth"}, ""},
		{nil, ""},
	} {
		root, ok := EarlyCreate(tc.args)
		if ok != (tc.root != "") || root != tc.root && ok {
			t.Errorf("EarlyCreate(%q) = %q, %v; want %q", tc.args, root, ok, tc.root)
		}
	}
}

// Only the process the arguments name starts an early spare: a test binary
// never does.
func TestNoEarlySpare(t *testing.T) {
	if _, ok := EarlyRoot(); ok {
		t.Fatal("a test process started an early spare")
	}
	if _, ok := TakeEarly(); ok {
		t.Fatal("a test process handed over an early spare")
	}
}

func TestBaseNameAndCut(t *testing.T) {
	for in, want := range map[string]string{"/usr/bin/berth-runc": "berth-runc", "berth-runc": "berth-runc", "/a/b/": "b", "/": "/", "": ""} {
		if got := baseName(in); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
	if b, a, ok := cut("--root=/x=y", '='); b != "--root" || a != "/x=y" || !ok {
		t.Errorf("cut: %q %q %v", b, a, ok)
	}
	if b, a, ok := cut("--debug", '='); b != "--debug" || a != "" || ok {
		t.Errorf("cut: %q %q %v", b, a, ok)
	}
}
