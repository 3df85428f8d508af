package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// credHelper is a docker-credential-<name> in docker's protocol (get,
// store, erase over stdin/stdout) keeping credentials as files in store
// and logging each call to store/log.
const credHelper = `#!/bin/sh
store=%STORE%
case "$1" in
store)
	in=$(cat)
	server=$(printf '%s' "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
	echo "store $server" >> "$store/log"
	printf '%s' "$in" > "$store/$(printf '%s' "$server" | tr '/:' '__')" ;;
get)
	server=$(cat)
	echo "get $server" >> "$store/log"
	f="$store/$(printf '%s' "$server" | tr '/:' '__')"
	if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase)
	server=$(cat)
	echo "erase $server" >> "$store/log"
	rm -f "$store/$(printf '%s' "$server" | tr '/:' '__')" ;;
*) exit 2 ;;
esac
`

// TestBerthCredentialHelper: with credsStore (and then credHelpers) in
// config.json, berth login stores the credentials in the helper (not in
// auths), pull and push get them from it, logout erases them; a helper
// that is not installed is an error that names it.
func TestBerthCredentialHelper(t *testing.T) {
	testutil.RequireRoot(t)
	reg, _ := startRegistry(t)
	d := testutil.StartDaemon(t)
	bin := testutil.BerthBinary(t)
	cfg, helpers, store := t.TempDir(), t.TempDir(), t.TempDir()
	script := strings.ReplaceAll(credHelper, "%STORE%", store)
	if err := os.WriteFile(filepath.Join(helpers, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-H", d.Host}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "PATH="+helpers+":"+os.Getenv("PATH"))
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustB := func(stdin string, args ...string) string {
		t.Helper()
		out, err := b(stdin, args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	writeCfg := func(s string) {
		if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustB("", "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	host := authProxy(t, reg, "basic", "alice", "s3cret")
	ref := host + "/private/bb:1"
	mustB("", "tag", "busybox", ref)

	writeCfg(`{"credsStore":"berthtest"}`)
	if out, err := b("", "push", ref); err == nil {
		t.Fatalf("push without credentials worked:\n%s", out)
	}
	mustB("s3cret\n", "login", "-u", "alice", "--password-stdin", host)
	c, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
	if strings.Contains(string(c), `"auth":`) || !strings.Contains(string(c), host) {
		t.Fatalf("config.json after a login through a helper: %s", c)
	}
	mustB("", "push", ref)
	mustB("", "rmi", ref)
	mustB("", "pull", ref)
	mustB("", "logout", host)
	mustB("", "rmi", ref)
	if out, err := b("", "pull", ref); err == nil {
		t.Fatalf("pull after logout worked:\n%s", out)
	}
	log, _ := os.ReadFile(filepath.Join(store, "log"))
	for _, want := range []string{"store " + host, "get " + host, "erase " + host} {
		if !strings.Contains(string(log), want+"\n") {
			t.Fatalf("helper log lacks %q:\n%s", want, log)
		}
	}

	// credHelpers picks the helper per registry and wins over auths (a
	// wrong password there is not used).
	mustB("s3cret\n", "login", "-u", "alice", "--password-stdin", host) // still credsStore: into the helper
	writeCfg(`{"credHelpers":{"` + host + `":"berthtest"},"auths":{"` + host + `":{"auth":"YWxpY2U6d3Jvbmc="}}}`)
	mustB("", "pull", ref)
	mustB("", "rmi", ref)

	// A helper that is not installed: the error names it.
	writeCfg(`{"credsStore":"absent"}`)
	if out, err := b("", "pull", ref); err == nil || !strings.Contains(out, "docker-credential-absent") {
		t.Fatalf("pull with a missing helper: %v\n%s", err, out)
	}
}
