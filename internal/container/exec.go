package container

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/monitor"
	"github.com/berth/berth/internal/spec"
)

// execInstance is one exec: created by ExecCreate, run once by ExecStart.
type execInstance struct {
	id, containerID string
	cfg             container.ExecCreateRequest

	mu       sync.Mutex // guards the fields below
	started  bool
	running  bool
	exitCode *int
	pid      int
}

func (s *Service) execByID(id string) (*execInstance, error) {
	v, ok := s.execs.Load(id)
	if !ok {
		return nil, errdefs.NotFoundf("No such exec instance: %s", id)
	}
	return v.(*execInstance), nil
}

// ExecCreate registers a command to run in a running container.
func (s *Service) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.Invalidf("No exec command specified")
	}
	if !c.Running() {
		return "", errdefs.Conflictf("container %s is not running", c.ID)
	}
	if c.State.Status == StatusPaused {
		return "", errdefs.Conflictf("container %s is paused, unpause the container before exec", c.ID)
	}
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	s.execs.Store(id, &execInstance{id: id, containerID: c.ID, cfg: req})
	return id, nil
}

// ExecStart runs an exec. Detached, it returns once the process runs
// (nil connection); attached, it returns the connection carrying the
// process's output (raw with a TTY, multiplexed otherwise) and taking its
// stdin, which ends when the process exits.
func (s *Service) ExecStart(ctx context.Context, id string, detach bool, consoleSize *[2]uint) (net.Conn, *bufio.Reader, error) {
	e, err := s.execByID(id)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return nil, nil, errdefs.Conflictf("exec %s has already started", id)
	}
	e.started = true
	e.mu.Unlock()
	c, err := s.index.get(e.containerID)
	if err != nil {
		return nil, nil, err
	}
	if !c.Running() {
		return nil, nil, errdefs.Conflictf("container %s is not running", c.ID)
	}
	if consoleSize == nil {
		consoleSize = e.cfg.ConsoleSize
	}
	p, err := s.execProcess(c, e.cfg, consoleSize)
	if err != nil {
		return nil, nil, err
	}
	req := monitor.ExecRequest{ID: id, Container: c.ID, Process: p, OpenStdin: e.cfg.AttachStdin && !detach,
		Stdout: e.cfg.AttachStdout, Stderr: e.cfg.AttachStderr}
	if detach {
		resp, err := s.cfg.Monitor.Exec(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		e.mu.Lock()
		e.running, e.pid = true, resp.Pid
		e.mu.Unlock()
		return nil, nil, nil
	}
	conn, br, err := s.cfg.Monitor.ExecAttach(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	return conn, br, nil
}

// ExecResize sets the terminal size of a running exec.
func (s *Service) ExecResize(ctx context.Context, id string, height, width uint16) error {
	e, err := s.execByID(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		return errdefs.Conflictf("exec %s is not running", id)
	}
	return s.cfg.Monitor.ExecResize(ctx, id, height, width)
}

// ExecInspect reports an exec: running, or its exit code once it is known.
func (s *Service) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	e, err := s.execByID(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	e.mu.Lock()
	ask := e.started && e.exitCode == nil
	e.mu.Unlock()
	if ask {
		st, err := s.cfg.Monitor.ExecState(ctx, id)
		e.mu.Lock()
		switch {
		case err == nil:
			e.pid = st.Pid
			e.running = st.Status != monitor.Exited
			if !e.running {
				code := st.ExitCode
				e.exitCode = &code
				// Its code is kept here: the monitor may forget it.
				s.cfg.Monitor.ExecDelete(context.WithoutCancel(ctx), id)
			}
		case errors.Is(err, errdefs.ErrNotFound):
			e.running = false // its container is gone, and its record with it
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	entry, args := "", []string(nil)
	if len(e.cfg.Cmd) > 0 {
		entry, args = e.cfg.Cmd[0], e.cfg.Cmd[1:]
	}
	priv := e.cfg.Privileged
	return container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID, Pid: e.pid,
		OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		CanRemove: !e.running && e.started, DetachKeys: []byte(e.cfg.DetachKeys),
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty, Entrypoint: entry, Arguments: args,
			Privileged: &priv, User: e.cfg.User},
	}, nil
}

// forgetExecs drops the exec instances of a removed container.
func (s *Service) forgetExecs(containerID string) {
	s.execs.Range(func(k, v any) bool {
		if v.(*execInstance).containerID == containerID {
			s.execs.Delete(k)
		}
		return true
	})
}

// execProcess is the OCI process of an exec: the container's, with the
// exec's command, terminal, environment, working directory and user.
func (s *Service) execProcess(c *Container, cfg container.ExecCreateRequest, consoleSize *[2]uint) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(s.bundle(c.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("container %s: read its spec: %w", c.ID, err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(b, &sp); err != nil || sp.Process == nil {
		return nil, fmt.Errorf("container %s: corrupt spec: %v", c.ID, err)
	}
	p := sp.Process
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	if cfg.Tty && consoleSize != nil && consoleSize[0] > 0 && consoleSize[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: consoleSize[0], Width: consoleSize[1]}
	}
	p.Env = mergeEnv(p.Env, cfg.Env)
	if cfg.WorkingDir != "" {
		if !strings.HasPrefix(cfg.WorkingDir, "/") {
			return nil, errdefs.Invalidf("the working directory %q is invalid: it needs to be an absolute path", cfg.WorkingDir)
		}
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		u, err := resolveExecUser(spec.RootfsUserDB{Rootfs: s.rootfs(c.ID)}, cfg.User)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if cfg.Privileged {
		all := allCapabilities()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return p, nil
}

// mergeEnv sets each KEY=VALUE of over in base (replacing the same KEY).
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// resolveExecUser resolves docker exec's --user: name|uid[:group|gid].
func resolveExecUser(db spec.UserDB, arg string) (specs.User, error) {
	userPart, groupPart, hasGroup := strings.Cut(arg, ":")
	var u specs.User
	users, err := db.Users()
	if err != nil {
		return u, err
	}
	found := false
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID, found = uint32(n), true
		for _, pw := range users {
			if pw.UID == int(n) {
				u.GID = uint32(pw.GID)
				break
			}
		}
	} else {
		for _, pw := range users {
			if pw.Name == userPart {
				u.UID, u.GID, found = uint32(pw.UID), uint32(pw.GID), true
				break
			}
		}
	}
	if !found {
		return u, errdefs.Invalidf("unable to find user %s: no matching entries in passwd file", userPart)
	}
	if hasGroup {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			groups, err := db.Groups()
			if err != nil {
				return u, err
			}
			ok := false
			for _, g := range groups {
				if g.Name == groupPart {
					u.GID, ok = uint32(g.GID), true
					break
				}
			}
			if !ok {
				return u, errdefs.Invalidf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	}
	return u, nil
}

// allCapabilities are the capabilities this kernel knows, for --privileged.
func allCapabilities() []string {
	names := []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
		"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",
		"IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT",
		"SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
		"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON",
		"BPF", "CHECKPOINT_RESTORE"}
	last := len(names) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < last {
			last = n
		}
	}
	out := make([]string, 0, last+1)
	for _, n := range names[:last+1] {
		out = append(out, "CAP_"+n)
	}
	return out
}

// ExecProber runs healthchecks as execs through the monitor, as Docker
// does. Service is set once the service exists (it is built with its
// prober in its Config).
type ExecProber struct {
	Service *Service
}

// maxProbeOutput is how much of a healthcheck's output is kept (Docker's).
const maxProbeOutput = 4096

// Probe runs argv in c and returns its exit code and the start of its
// output. When ctx ends first, the process is killed.
func (p *ExecProber) Probe(ctx context.Context, c *Container, argv []string) (int, string, error) {
	s := p.Service
	if s == nil {
		return -1, "", errors.New("healthcheck: the exec prober has no service")
	}
	id, err := s.ExecCreate(ctx, c.ID, container.ExecCreateRequest{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, "", err
	}
	defer s.execs.Delete(id)
	conn, br, err := s.ExecStart(context.WithoutCancel(ctx), id, false, nil)
	if err != nil {
		return -1, "", err
	}
	defer conn.Close()
	out := make(chan string, 1)
	go func() { out <- readFrames(br, maxProbeOutput) }()
	select {
	case text := <-out:
		info, err := s.ExecInspect(context.WithoutCancel(ctx), id)
		if err != nil {
			return -1, text, err
		}
		if info.ExitCode == nil {
			return -1, text, fmt.Errorf("healthcheck exec %s: no exit code", id)
		}
		return *info.ExitCode, text, nil
	case <-ctx.Done():
		s.cfg.Monitor.ExecKill(context.WithoutCancel(ctx), id, int(unix.SIGKILL))
		return -1, "", ctx.Err()
	}
}

// readFrames reads a multiplexed stream to its end and returns the first
// max bytes of its payload (stdout and stderr as they came).
func readFrames(r *bufio.Reader, max int) string {
	var buf []byte
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return string(buf)
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		chunk := make([]byte, n)
		if _, err := io.ReadFull(r, chunk); err != nil {
			return string(buf)
		}
		if room := max - len(buf); room > 0 {
			if len(chunk) > room {
				chunk = chunk[:room]
			}
			buf = append(buf, chunk...)
		}
	}
}
