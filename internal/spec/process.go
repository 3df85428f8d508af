package spec

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// process fills the spec's process: args, env, cwd, user, capabilities,
// rlimits and the small flags.
func process(p *specs.Process, in Input, cfg *container.Config, host *container.HostConfig, hostname string, sec securityOpts) error {
	p.Args = append([]string{in.Path}, in.Args...)
	if useInit(host) {
		if in.InitPath == "" {
			return errdefs.Invalidf("invalid Init: no init binary is configured")
		}
		p.Args = append([]string{InitDestination, "--"}, p.Args...)
	}

	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return errdefs.Invalidf("invalid WorkingDir %q: the working directory needs to be an absolute path", cwd)
	}
	p.Cwd = path.Clean(cwd)

	userSpec := cfg.User
	if userSpec == "" {
		userSpec = in.Image.User
	}
	u, home, err := resolveUser(in.Users, userSpec, host.GroupAdd)
	if err != nil {
		return err
	}
	p.User = u
	p.User.Umask = host.Umask

	env, err := environment(in.Image.Env, cfg.Env, hostname, cfg.Tty, home)
	if err != nil {
		return err
	}
	p.Env = env

	caps, err := capabilities(host.Privileged, host.CapAdd, host.CapDrop, in.HostCapabilities)
	if err != nil {
		return err
	}
	p.Capabilities = caps

	rl, err := rlimits(host.Ulimits)
	if err != nil {
		return err
	}
	p.Rlimits = rl

	p.NoNewPrivileges = sec.noNewPrivileges
	if host.OomScoreAdj < -1000 || host.OomScoreAdj > 1000 {
		return errdefs.Invalidf("invalid OomScoreAdj %d: should be in range [-1000, 1000]", host.OomScoreAdj)
	}
	adj := host.OomScoreAdj
	p.OOMScoreAdj = &adj
	if cfg.Tty && (host.ConsoleSize[0] > 0 || host.ConsoleSize[1] > 0) {
		p.ConsoleSize = &specs.Box{Height: host.ConsoleSize[0], Width: host.ConsoleSize[1]}
	}
	return nil
}

// environment builds the process environment as Docker does. First the
// image's variables are merged under the container's (Docker's create:
// the container's list, then image variables it does not name). Then
// PATH, HOSTNAME and (with a tty) TERM come first and the merged list
// replaces them in place or appends; a bare NAME (no "=") removes NAME.
// HOSTNAME is left out when the hostname is not known here (the host's,
// with --uts host or --network host and no Config.Hostname).
// HOME comes last, from the user's passwd entry, when nothing set it.
func environment(image, ctr []string, hostname string, tty bool, home string) ([]string, error) {
	for _, list := range [][]string{image, ctr} {
		for _, kv := range list {
			if k, _, _ := strings.Cut(kv, "="); k == "" || strings.ContainsRune(kv, 0) {
				return nil, errdefs.Invalidf("invalid environment variable: %q", kv)
			}
		}
	}
	merged := slices.Clone(ctr)
	ctrKeys := map[string]bool{}
	for _, kv := range ctr {
		k, _, _ := strings.Cut(kv, "=")
		ctrKeys[k] = true
	}
	for _, kv := range image {
		if k, _, _ := strings.Cut(kv, "="); !ctrKeys[k] {
			merged = append(merged, kv)
		}
	}

	env := []string{"PATH=" + DefaultPathEnv}
	idx := map[string]int{"PATH": 0}
	if hostname != "" {
		idx["HOSTNAME"] = len(env)
		env = append(env, "HOSTNAME="+hostname)
	}
	if tty {
		idx["TERM"] = len(env)
		env = append(env, "TERM=xterm")
	}
	for _, kv := range merged {
		k, _, _ := strings.Cut(kv, "=")
		if i, seen := idx[k]; seen {
			env[i] = kv
			continue
		}
		idx[k] = len(env)
		env = append(env, kv)
	}
	out := env[:0]
	hasHome := false
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			continue // a bare NAME unsets NAME
		}
		if strings.HasPrefix(kv, "HOME=") {
			hasHome = true
		}
		out = append(out, kv)
	}
	if !hasHome && home != "" {
		out = append(out, "HOME="+home)
	}
	return out, nil
}

// maxID is the largest uid or gid Docker accepts.
const maxID = math.MaxInt32

// resolveUser resolves "user", "user:group", "uid:gid" (and the empty
// string, root) against the image's passwd and group files, as Docker does,
// and adds --group-add groups to the supplementary ones. It returns the user
// and its home directory.
func resolveUser(db UserDB, spec string, groupAdd []string) (specs.User, string, error) {
	var users []User
	var groups []Group
	if db != nil {
		var err error
		if users, err = db.Users(); err != nil {
			return specs.User{}, "", fmt.Errorf("read the image's passwd file: %w", err)
		}
		if groups, err = db.Groups(); err != nil {
			return specs.User{}, "", fmt.Errorf("read the image's group file: %w", err)
		}
	}
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	if userArg == "" {
		userArg = "0"
	}
	if hasGroup && groupArg == "" {
		return specs.User{}, "", errdefs.Invalidf("invalid User %q: empty group", spec)
	}

	uid, gid, home, name := 0, 0, "/", ""
	var matched *User
	for i := range users {
		if users[i].Name == userArg || strconv.Itoa(users[i].UID) == userArg {
			matched = &users[i]
			break
		}
	}
	if matched != nil {
		uid, gid, name = matched.UID, matched.GID, matched.Name
		if matched.Home != "" {
			home = matched.Home
		}
	} else {
		n, err := strconv.ParseInt(userArg, 10, 64)
		if err != nil {
			return specs.User{}, "", errdefs.Invalidf("unable to find user %s: no matching entries in passwd file", userArg)
		}
		if n < 0 || n > maxID {
			return specs.User{}, "", errdefs.Invalidf("invalid User %q: uids and gids must be in range 0-%d", spec, maxID)
		}
		uid = int(n)
	}

	var sgids []uint32
	if hasGroup {
		g, err := findGroup(groups, groupArg)
		if err != nil {
			return specs.User{}, "", err
		}
		gid = g
	} else if name != "" {
		for _, g := range groups {
			if slices.Contains(g.Members, name) {
				sgids = appendID(sgids, uint32(g.GID))
			}
		}
	}
	for _, ga := range groupAdd {
		g, err := findGroup(groups, ga)
		if err != nil {
			return specs.User{}, "", err
		}
		sgids = appendID(sgids, uint32(g))
	}
	if uid > maxID || gid > maxID {
		return specs.User{}, "", errdefs.Invalidf("invalid User %q: uids and gids must be in range 0-%d", spec, maxID)
	}
	return specs.User{UID: uint32(uid), GID: uint32(gid), AdditionalGids: sgids}, home, nil
}

// findGroup resolves a group name or number.
func findGroup(groups []Group, arg string) (int, error) {
	for _, g := range groups {
		if g.Name == arg || strconv.Itoa(g.GID) == arg {
			if g.GID > maxID {
				break
			}
			return g.GID, nil
		}
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return 0, errdefs.Invalidf("unable to find group %s: no matching entries in group file", arg)
	}
	if n < 0 || n > maxID {
		return 0, errdefs.Invalidf("invalid group %q: uids and gids must be in range 0-%d", arg, maxID)
	}
	return int(n), nil
}

func appendID(ids []uint32, id uint32) []uint32 {
	if slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}

// rlimitNames maps Docker's --ulimit names to the kernel's.
var rlimitNames = map[string]string{
	"as":         "RLIMIT_AS",
	"core":       "RLIMIT_CORE",
	"cpu":        "RLIMIT_CPU",
	"data":       "RLIMIT_DATA",
	"fsize":      "RLIMIT_FSIZE",
	"locks":      "RLIMIT_LOCKS",
	"memlock":    "RLIMIT_MEMLOCK",
	"msgqueue":   "RLIMIT_MSGQUEUE",
	"nice":       "RLIMIT_NICE",
	"nofile":     "RLIMIT_NOFILE",
	"nproc":      "RLIMIT_NPROC",
	"rss":        "RLIMIT_RSS",
	"rtprio":     "RLIMIT_RTPRIO",
	"rttime":     "RLIMIT_RTTIME",
	"sigpending": "RLIMIT_SIGPENDING",
	"stack":      "RLIMIT_STACK",
}

// rlimits turns --ulimit values into POSIX rlimits; -1 is unlimited.
func rlimits(ul []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]int{}
	for _, u := range ul {
		if u == nil {
			continue
		}
		t, ok := rlimitNames[u.Name]
		if !ok {
			return nil, errdefs.Invalidf("invalid Ulimits: unknown ulimit %q", u.Name)
		}
		soft, err1 := rlimitValue(u.Soft)
		hard, err2 := rlimitValue(u.Hard)
		if err1 != nil || err2 != nil {
			return nil, errdefs.Invalidf("invalid Ulimits %s=%d:%d: values must be -1 (unlimited) or more", u.Name, u.Soft, u.Hard)
		}
		if soft > hard {
			return nil, errdefs.Invalidf("invalid Ulimits %s=%d:%d: soft limit must be less than or equal to hard limit", u.Name, u.Soft, u.Hard)
		}
		r := specs.POSIXRlimit{Type: t, Soft: soft, Hard: hard}
		if i, dup := seen[t]; dup {
			out[i] = r
			continue
		}
		seen[t] = len(out)
		out = append(out, r)
	}
	return out, nil
}

func rlimitValue(v int64) (uint64, error) {
	if v == -1 {
		return math.MaxUint64, nil
	}
	if v < 0 {
		return 0, fmt.Errorf("negative")
	}
	return uint64(v), nil
}

// useInit says whether --init applies: as Docker, only to a container with
// its own pid namespace (with --pid host or container:<id> another process
// is pid 1 already).
func useInit(host *container.HostConfig) bool {
	return host.Init != nil && *host.Init && host.PidMode == ""
}
