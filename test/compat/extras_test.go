package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/internal/testutil"
)

// The less common container verbs through the real docker CLI: cp both
// ways (and its symlink-escape class), diff, top, stats, pause/unpause,
// update, commit then run, export, system df.
func TestDockerContainerExtras(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	// The container plants links that lead out of its root if followed on
	// the host: /esc -> /, /tmp/up -> ../../.., /hostfile -> a host path.
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("HOST SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, d, "run", "-d", "--name", "xx", "busybox", "sh", "-c",
		"echo in-container > /tmp/file; mkdir -p /data; echo own > /data/secret; ln -s / /esc; ln -s ../../.. /tmp/up; ln -s "+secret+" /hostfile; touch /ready; exec sleep 300")
	waitFor(t, func() bool { _, err := docker(t, d, "cp", "xx:/ready", t.TempDir()); return err == nil })

	out := t.TempDir()
	// cp out of the container: a file, into a new name.
	must(t, d, "cp", "xx:/tmp/file", filepath.Join(out, "copy"))
	if b, _ := os.ReadFile(filepath.Join(out, "copy")); string(b) != "in-container\n" {
		t.Fatalf("docker cp out: %q", b)
	}
	// Through the escaping links: the container's own files, never the host's.
	for _, p := range []string{"xx:/esc" + host + "/secret", "xx:/tmp/up" + host + "/secret"} {
		o, err := docker(t, d, "cp", p, filepath.Join(out, "esc"))
		if err == nil {
			t.Fatalf("docker cp %s succeeded (the path is not in the container): %s", p, o)
		}
		if !strings.Contains(o, "Could not find the file") {
			t.Fatalf("docker cp %s: %s", p, o)
		}
	}
	must(t, d, "cp", "xx:/esc/data/secret", filepath.Join(out, "own"))
	if b, _ := os.ReadFile(filepath.Join(out, "own")); string(b) != "own\n" {
		t.Fatalf("cp through /esc read %q", b)
	}
	// -L follows /hostfile inside the container, where the target is missing.
	if o, err := docker(t, d, "cp", "-L", "xx:/hostfile", filepath.Join(out, "hf")); err == nil {
		if b, _ := os.ReadFile(filepath.Join(out, "hf")); strings.Contains(string(b), "HOST SECRET") {
			t.Fatalf("cp -L read the host's file: %s", o)
		}
	}
	// cp into the container, also through an escaping link.
	src := filepath.Join(out, "in.txt")
	os.WriteFile(src, []byte("from-host\n"), 0o644)
	must(t, d, "cp", src, "xx:/tmp/")
	must(t, d, "cp", src, "xx:/esc/tmp/via-link.txt")
	o, err := docker(t, d, "cp", src, "xx:/nonexistent/dir/")
	if exitCode(err) != 1 {
		t.Fatalf("cp into a missing directory: exit %d: %s", exitCode(err), o)
	}
	must(t, d, "cp", "xx:/tmp/in.txt", filepath.Join(out, "back.txt"))
	if b, _ := os.ReadFile(filepath.Join(out, "back.txt")); string(b) != "from-host\n" {
		t.Fatalf("round trip: %q", b)
	}
	// Owners: the container's root without -a, the file's own with -a.
	owned := filepath.Join(out, "owned")
	os.WriteFile(owned, []byte("o\n"), 0o640)
	if err := os.Chown(owned, 1234, 4321); err != nil {
		t.Fatal(err)
	}
	must(t, d, "cp", owned, "xx:/tmp/owned-root")
	must(t, d, "cp", "-a", owned, "xx:/tmp/owned-kept")
	for name, want := range map[string]string{"owned-root": "0/0", "owned-kept": "1234/4321"} {
		cmd := exec.Command("sh", "-c", "docker cp xx:/tmp/"+name+" - | tar tv --numeric-owner")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
		o, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(o), " "+want+" ") {
			t.Fatalf("owner of %s: want %s: %v %s", name, want, err, o)
		}
	}
	// "/." copies a directory's contents, into a new directory too.
	must(t, d, "cp", "xx:/data/.", filepath.Join(out, "contents"))
	if b, _ := os.ReadFile(filepath.Join(out, "contents", "secret")); string(b) != "own\n" {
		t.Fatalf("cp of /data/. : %q", b)
	}
	// The running container's / holds its /proc mount: not its contents.
	if all := must(t, d, "cp", "xx:/", "-"); !strings.Contains(all, "/bin/busybox") || strings.Contains(all, "/proc/1/") {
		t.Fatalf("cp of / : busybox %v, /proc contents %v", strings.Contains(all, "/bin/busybox"), strings.Contains(all, "/proc/1/"))
	}
	tarOut := must(t, d, "cp", "xx:/tmp/in.txt", "-")
	if !strings.Contains(tarOut, "from-host") {
		t.Fatalf("cp to stdout: %q", tarOut)
	}

	diff := must(t, d, "diff", "xx")
	for _, want := range []string{"A /esc", "C /tmp", "A /tmp/file", "A /tmp/in.txt", "A /tmp/via-link.txt", "A /data"} {
		if !strings.Contains(diff, want+"\n") {
			t.Fatalf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/etc/hostname") {
		t.Fatalf("docker diff shows the runtime's mount points:\n%s", diff)
	}

	if top := must(t, d, "top", "xx"); !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 300") {
		t.Fatalf("docker top:\n%s", top)
	}
	stats := must(t, d, "stats", "--no-stream", "xx")
	if lines := strings.Split(strings.TrimSpace(stats), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(lines[1], " xx ") {
		t.Fatalf("docker stats --no-stream:\n%s", stats)
	}
	must(t, d, "pause", "xx")
	if s := must(t, d, "ps", "--format", "{{.Status}}"); !strings.Contains(s, "(Paused)") {
		t.Fatalf("paused container in ps: %q", s)
	}
	if o, err := docker(t, d, "pause", "xx"); exitCode(err) != 1 || !strings.Contains(o, "already paused") {
		t.Fatalf("pause twice: %v %s", err, o)
	}
	must(t, d, "unpause", "xx")
	if s := must(t, d, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "xx"); strings.TrimSpace(s) != "running false" {
		t.Fatalf("after unpause: %q", s)
	}
	must(t, d, "update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "40", "--restart", "on-failure:3", "xx")
	if s := must(t, d, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "xx"); strings.TrimSpace(s) != "67108864 500000000 40 on-failure" {
		t.Fatalf("after update: %q", s)
	}
	if s := must(t, d, "stats", "--no-stream", "--format", "{{.MemUsage}}", "xx"); !strings.Contains(s, "/ 64MiB") {
		t.Fatalf("memory limit not applied live: %q", s)
	}

	id := strings.TrimSpace(must(t, d, "commit", "-c", `CMD ["cat", "/tmp/in.txt"]`, "-c", "ENV FROM_COMMIT=1", "-a", "tester", "xx", "snap:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("docker commit printed %q", id)
	}
	if s := must(t, d, "run", "--rm", "snap:1"); s != "from-host\n" {
		t.Fatalf("running the committed image: %q", s)
	}
	if s := must(t, d, "run", "--rm", "snap:1", "sh", "-c", "echo $FROM_COMMIT"); s != "1\n" {
		t.Fatalf("--change ENV: %q", s)
	}

	exp := filepath.Join(out, "x.tar")
	must(t, d, "export", "-o", exp, "xx")
	list, err := exec.Command("tar", "tf", exp).CombinedOutput()
	if err != nil {
		t.Fatalf("tar t: %v\n%s", err, list)
	}
	for _, want := range []string{"bin/busybox", "tmp/in.txt", "esc"} {
		if !strings.Contains(string(list), want+"\n") {
			t.Fatalf("export lacks %s", want)
		}
	}
	if strings.Contains(string(list), "proc/1/") {
		t.Fatal("export holds /proc")
	}

	df := must(t, d, "system", "df")
	for _, want := range []string{"TYPE", "Images", "Containers", "Local Volumes", "Build Cache"} {
		if !strings.Contains(df, want) {
			t.Fatalf("docker system df lacks %s:\n%s", want, df)
		}
	}
	// Stopped: cp and diff still work (the rootfs is mounted for the call).
	must(t, d, "update", "--restart", "no", "xx")
	must(t, d, "kill", "xx")
	must(t, d, "wait", "xx")
	if s := must(t, d, "inspect", "-f", "{{.State.Status}}", "xx"); strings.TrimSpace(s) != "exited" {
		t.Fatalf("after kill: %q", s)
	}
	must(t, d, "cp", "xx:/tmp/file", filepath.Join(out, "stopped"))
	must(t, d, "cp", src, "xx:/tmp/after-stop.txt")
	if diff := must(t, d, "diff", "xx"); !strings.Contains(diff, "A /tmp/after-stop.txt") {
		t.Fatalf("diff of the stopped container:\n%s", diff)
	}
	if o, err := docker(t, d, "pause", "xx"); exitCode(err) != 1 || !strings.Contains(o, "not running") {
		t.Fatalf("pause of a stopped container: %v %s", err, o)
	}
}

// A paused container can be killed and removed, as with Docker.
func TestDockerPausedKill(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--name", "pp", "busybox", "sleep", "300")
	must(t, d, "pause", "pp")
	must(t, d, "kill", "pp")
	if s := must(t, d, "wait", "pp"); strings.TrimSpace(s) != "137" {
		t.Fatalf("wait after kill of a paused container: %q", s)
	}
	must(t, d, "run", "-d", "--name", "qq", "busybox", "sleep", "300")
	must(t, d, "pause", "qq")
	must(t, d, "rm", "-f", "qq")
}

// An export still streaming when the container exits must not keep its
// rootfs mounted: the exit's unmount and cleanup would then run through
// the live mount and delete the container's files.
func TestDockerExportAcrossExit(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--name", "ex", "busybox", "sh", "-c", "echo kept > /keep; exec sleep 2")
	waitFor(t, func() bool { _, err := docker(t, d, "cp", "ex:/keep", t.TempDir()); return err == nil })
	// The reader stalls until the container has exited: the export blocks
	// on a full pipe meanwhile, its fds open.
	cmd := exec.Command("sh", "-c", "docker export ex | (sleep 4; wc -c)")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if s := must(t, d, "inspect", "-f", "{{.State.Status}}", "ex"); strings.TrimSpace(s) != "exited" {
		t.Fatalf("status %q", s)
	}
	if diff := must(t, d, "diff", "ex"); !strings.Contains(diff, "A /keep") {
		t.Fatalf("the container's files are gone after the exit:\n%s", diff)
	}
	if s := must(t, d, "start", "-a", "ex"); s != "" {
		t.Fatalf("start: %q", s)
	}
}

// A stopped container's volumes and binds are part of its path space for
// docker cp, as with Docker (they are bound in for the copy); a read-only
// bind stays read-only.
func TestDockerCpStoppedVolumes(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	bind := t.TempDir()
	os.WriteFile(filepath.Join(bind, "b.txt"), []byte("bound\n"), 0o644)
	must(t, d, "run", "--name", "vv", "-v", "vol1:/data", "-v", bind+":/ro:ro", "busybox", "sh", "-c", "echo in-volume > /data/f")
	out := t.TempDir()
	must(t, d, "cp", "vv:/data/f", filepath.Join(out, "f"))
	if b, _ := os.ReadFile(filepath.Join(out, "f")); string(b) != "in-volume\n" {
		t.Fatalf("cp from a stopped container's volume: %q", b)
	}
	must(t, d, "cp", "vv:/ro/b.txt", filepath.Join(out, "b"))
	if b, _ := os.ReadFile(filepath.Join(out, "b")); string(b) != "bound\n" {
		t.Fatalf("cp from a stopped container's bind: %q", b)
	}
	src := filepath.Join(out, "new.txt")
	os.WriteFile(src, []byte("new\n"), 0o644)
	must(t, d, "cp", src, "vv:/data/")
	if s := must(t, d, "run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/new.txt"); s != "new\n" {
		t.Fatalf("cp into a stopped container's volume: %q", s)
	}
	if o, err := docker(t, d, "cp", src, "vv:/ro/"); err == nil {
		t.Fatalf("cp into a read-only bind succeeded: %s", o)
	}
	if _, err := os.Stat(filepath.Join(bind, "new.txt")); err == nil {
		t.Fatal("the read-only bind was written")
	}
	if diff := must(t, d, "diff", "vv"); strings.Contains(diff, "new.txt") {
		t.Fatalf("the copy into the volume landed in the rootfs:\n%s", diff)
	}
	if n, _ := testutil.ContainerMountsUnder(d.ExecRoot); len(n) > 0 {
		t.Fatalf("mounts left under the exec root: %v", n)
	}
}

// As with Docker, `docker restart` keeps an --rm container (the stop's
// exit does not remove it) and its writable layer, mounted volatile, is
// mounted again; it goes away at its next exit.
func TestDockerRestartKeepsRmContainer(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--rm", "--name", "rr", "busybox", "sh", "-c", "[ -f /mark ] && echo again; touch /mark; exec sleep 300")
	must(t, d, "restart", "-t", "1", "rr")
	if s := must(t, d, "inspect", "-f", "{{.State.Running}}", "rr"); strings.TrimSpace(s) != "true" {
		t.Fatalf("after restart: running=%q", s)
	}
	waitFor(t, func() bool { s, _ := docker(t, d, "logs", "rr"); return strings.Contains(s, "again") })
	must(t, d, "stop", "-t", "1", "rr")
	waitFor(t, func() bool { _, err := docker(t, d, "inspect", "rr"); return err != nil })
}

// TestDockerSharedNamespaces: docker run --pid/--ipc container:<name>, as
// a debugging sidecar uses them, and Docker's refusal of a non-shareable
// IPC donor.
func TestDockerSharedNamespaces(t *testing.T) {
	requireDockerCLI(t)
	testutil.RequireRoot(t)
	d := testutil.StartDaemon(t)
	must(t, d, "load", "-i", testutil.BusyboxImage(t, "busybox:latest"))
	must(t, d, "run", "-d", "--name", "app", "--ipc", "shareable", "busybox", "sh", "-c", "echo hi > /dev/shm/m; exec sleep 300")
	if out := must(t, d, "run", "--rm", "--pid", "container:app", "busybox", "ps", "-o", "args"); !strings.Contains(out, "sleep 300") {
		t.Errorf("--pid container:app: ps shows %q", out)
	}
	waitFor(t, func() bool {
		out, _ := docker(t, d, "run", "--rm", "--ipc", "container:app", "busybox", "cat", "/dev/shm/m")
		return out == "hi\n"
	})
	must(t, d, "run", "-d", "--name", "private", "busybox", "sleep", "300")
	out, err := docker(t, d, "run", "--rm", "--ipc", "container:private", "busybox", "true")
	if err == nil || !strings.Contains(out, "non-shareable") {
		t.Errorf("--ipc container:private: %v %q, want refused", err, out)
	}
	must(t, d, "rm", "-f", "app", "private")
}
