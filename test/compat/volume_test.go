package compat

import (
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

func TestDockerVolumeLifecycle(t *testing.T) {
	requireDockerCLI(t)
	d := testutil.StartDaemon(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := docker(t, d, args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}
	if got := run("volume", "create", "--label", "app=web", "webdata"); got != "webdata" {
		t.Fatalf("create printed %q", got)
	}
	anon := run("volume", "create")
	if len(anon) != 64 {
		t.Fatalf("anonymous volume name %q", anon)
	}
	if got := run("volume", "ls", "-q", "--filter", "label=app=web"); got != "webdata" {
		t.Fatalf("ls -q filtered = %q", got)
	}
	if got := run("volume", "inspect", "--format", "{{.Driver}} {{.Scope}} {{.Mountpoint}}", "webdata"); got != "local local "+d.DataRoot+"/volumes/webdata/_data" {
		t.Fatalf("inspect = %q", got)
	}
	if got := run("volume", "prune", "-f"); !strings.Contains(got, anon) {
		t.Fatalf("prune removed %q, want the anonymous volume", got)
	}
	run("volume", "rm", "webdata")
	if got := run("volume", "ls", "-q"); got != "" {
		t.Fatalf("volumes left: %q", got)
	}
	out, err := docker(t, d, "volume", "inspect", "webdata")
	if err == nil || !strings.Contains(out, "no such volume") {
		t.Fatalf("inspect of a removed volume: %v %s", err, out)
	}
	out, err = docker(t, d, "volume", "create", "bad/name")
	if err == nil || !strings.Contains(out, "invalid characters") {
		t.Fatalf("bad name: %v %s", err, out)
	}
}
