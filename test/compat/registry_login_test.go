package compat

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// TestBerthLogin: berth's own login/logout against a registry behind Basic
// auth: a wrong password is refused, the right one is saved to DOCKER_CONFIG
// and used by push and pull, logout removes it.
func TestBerthLogin(t *testing.T) {
	testutil.RequireRoot(t)
	reg, _ := startRegistry(t)
	d := testutil.StartDaemon(t)
	bin := testutil.BerthBinary(t)
	cfg := t.TempDir()
	b := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-H", d.Host}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := b("", "load", "-i", testutil.BusyboxImage(t, "busybox:latest")); err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	host := authProxy(t, reg, "basic", "alice", "s3cret")
	ref := host + "/private/bb:1"
	if out, err := b("", "tag", "busybox", ref); err != nil {
		t.Fatalf("tag: %v\n%s", err, out)
	}
	if out, err := b("wrong\n", "login", "-u", "alice", "--password-stdin", host); err == nil {
		t.Fatalf("login with a wrong password worked:\n%s", out)
	}
	if out, err := b("s3cret\n", "login", "-u", "alice", "--password-stdin", host); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if out, err := b("", "push", ref); err != nil {
		t.Fatalf("push after login: %v\n%s", err, out)
	}
	if out, err := b("", "rmi", ref); err != nil {
		t.Fatalf("rmi: %v\n%s", err, out)
	}
	if out, err := b("", "pull", ref); err != nil {
		t.Fatalf("pull after login: %v\n%s", err, out)
	}
	if out, err := b("", "logout", host); err != nil {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if out, err := b("", "rmi", ref); err != nil {
		t.Fatalf("rmi: %v\n%s", err, out)
	}
	if out, err := b("", "pull", ref); err == nil {
		t.Fatalf("pull after logout worked:\n%s", out)
	}
}
