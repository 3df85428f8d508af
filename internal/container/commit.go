package container

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
)

// ImageCommit is what the image service needs to make an image of a
// container's root filesystem.
type ImageCommit struct {
	Ref     string // name to give the image, "" for none
	Comment string
	Author  string
	Config  *dockerspec.DockerOCIImageConfig
}

// Committer is an optional part of Images (`docker commit`).
type Committer interface {
	// CommitRootfs makes an image of container id's root filesystem on top
	// of imageID and returns the new image's ID.
	CommitRootfs(ctx context.Context, id, imageID string, opts ImageCommit) (string, error)
}

// RootfsLayers is an optional part of Images (`docker diff`).
type RootfsLayers interface {
	// RootfsLayers returns the overlay upper directory of container id's
	// root filesystem and its lower directories, topmost first; an
	// errdefs.NotImplemented error when the rootfs is not an overlay.
	RootfsLayers(ctx context.Context, id string) (upper string, lowers []string, err error)
}

// CommitOptions are POST /commit's parameters.
type CommitOptions struct {
	Ref     string   // repo[:tag], "" for none
	Comment string   // --message
	Author  string   // --author
	Changes []string // --change, Dockerfile instructions
	Config  *container.Config
	Pause   bool
}

// Commit makes an image of a container: its image plus one layer of its
// changes, with its configuration (and Changes) as the run configuration.
func (s *Service) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	committer, ok := s.cfg.Images.(Committer)
	if !ok {
		return "", errdefs.NotImplemented(errors.New("commit is not supported by this image store"))
	}
	c, err := s.index.get(ref)
	if err != nil {
		return "", err
	}
	switch c.State.Status {
	case StatusRemoving, StatusDead:
		return "", errdefs.Conflictf("container %s is marked for removal and cannot be committed", c.ID)
	}
	img, err := s.cfg.Images.Resolve(ctx, c.Image)
	if err != nil {
		return "", fmt.Errorf("commit: image of the container: %w", err)
	}
	newCfg := &container.Config{}
	if opts.Config != nil {
		cp := *opts.Config
		newCfg = &cp
	}
	if err := ApplyChanges(newCfg, opts.Changes); err != nil {
		return "", err
	}
	effective := *c.Config
	mergeConfig(&effective, &img.Config)
	mergeConfig(newCfg, &effective)

	if opts.Pause && c.State.Status == StatusRunning {
		if err := s.Pause(ctx, c.ID); err == nil {
			defer s.Unpause(context.WithoutCancel(ctx), c.ID)
		}
	}
	id, err := committer.CommitRootfs(ctx, c.ID, c.Image, ImageCommit{Ref: opts.Ref, Comment: opts.Comment, Author: opts.Author, Config: imageConfig(newCfg)})
	if err != nil {
		return "", err
	}
	s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: events.ActionCommit,
		Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, map[string]string{"comment": opts.Comment, "imageID": id, "imageRef": opts.Ref})}})
	return id, nil
}

// mergeConfig fills what user leaves unset from base, by Docker's rules
// (moby daemon/commit.go merge): env and labels and ports and volumes are
// unions with user's winning, the entrypoint and cmd come as a pair.
func mergeConfig(user, base *container.Config) {
	if user.User == "" {
		user.User = base.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = base.ExposedPorts
	} else {
		for p := range base.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = base.Env
	} else {
		for _, e := range base.Env {
			k, _, _ := strings.Cut(e, "=")
			if !slices.ContainsFunc(user.Env, func(u string) bool { uk, _, _ := strings.Cut(u, "="); return uk == k }) {
				user.Env = append(user.Env, e)
			}
		}
	}
	if len(base.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range base.Labels {
			labels[k] = v
		}
		for k, v := range user.Labels {
			labels[k] = v
		}
		user.Labels = labels
	}
	if len(user.Entrypoint) == 0 {
		if len(user.Cmd) == 0 {
			user.Cmd, user.Shell = base.Cmd, base.Shell
		}
		if user.Entrypoint == nil {
			user.Entrypoint = base.Entrypoint
		}
	}
	if user.Healthcheck == nil {
		user.Healthcheck = base.Healthcheck
	}
	if user.WorkingDir == "" {
		user.WorkingDir = base.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = base.Volumes
	} else {
		for v := range base.Volumes {
			user.Volumes[v] = struct{}{}
		}
	}
	if user.StopSignal == "" {
		user.StopSignal = base.StopSignal
	}
	if len(user.OnBuild) == 0 {
		user.OnBuild = base.OnBuild
	}
}

// imageConfig is the image run configuration of cfg.
func imageConfig(cfg *container.Config) *dockerspec.DockerOCIImageConfig {
	out := &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		User: cfg.User, Env: cfg.Env, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint,
		WorkingDir: cfg.WorkingDir, Labels: cfg.Labels, StopSignal: cfg.StopSignal,
	}}
	if len(out.Entrypoint) == 1 && out.Entrypoint[0] == "" {
		out.Entrypoint = nil
	}
	out.Healthcheck, out.OnBuild, out.Shell = cfg.Healthcheck, cfg.OnBuild, cfg.Shell
	if len(cfg.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range cfg.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(cfg.Volumes) > 0 {
		out.Volumes = map[string]struct{}{}
		for v := range cfg.Volumes {
			out.Volumes[v] = struct{}{}
		}
	}
	return out
}

// ImageConfigFromChanges is the run configuration `docker import
// --change` lines make (Invalid for a line ApplyChanges refuses).
func ImageConfigFromChanges(changes []string) (*dockerspec.DockerOCIImageConfig, error) {
	cfg := &container.Config{}
	if err := ApplyChanges(cfg, changes); err != nil {
		return nil, err
	}
	return imageConfig(cfg), nil
}

// ApplyChanges applies `docker commit --change` (and `import --change`)
// Dockerfile instructions to cfg: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
// ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, SHELL.
func ApplyChanges(cfg *container.Config, changes []string) error {
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		word, rest, _ := strings.Cut(ch, " ")
		if i := strings.IndexAny(word, "\t"); i >= 0 {
			word, rest = ch[:i], ch[i+1:]
		}
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "CMD":
			cfg.Cmd = execOrShell(rest, cfg.Shell)
		case "ENTRYPOINT":
			cfg.Entrypoint = execOrShell(rest, cfg.Shell)
		case "SHELL":
			var sh []string
			if err := json.Unmarshal([]byte(rest), &sh); err != nil || len(sh) == 0 {
				return errdefs.Invalidf("SHELL requires the arguments to be in JSON form: %q", ch)
			}
			cfg.Shell = sh
		case "ENV":
			kv, err := keyValues(rest, true)
			if err != nil {
				return errdefs.Invalidf("%s: %v", ch, err)
			}
			for _, p := range kv {
				k := p[0]
				cfg.Env = slices.DeleteFunc(cfg.Env, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k })
				cfg.Env = append(cfg.Env, k+"="+p[1])
			}
		case "LABEL":
			kv, err := keyValues(rest, false)
			if err != nil {
				return errdefs.Invalidf("%s: %v", ch, err)
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, p := range kv {
				cfg.Labels[p[0]] = p[1]
			}
		case "EXPOSE":
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			for _, f := range strings.Fields(rest) {
				p, err := network.ParsePort(f)
				if err != nil {
					return errdefs.Invalidf("EXPOSE %s: %v", f, err)
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			var vols []string
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &vols); err != nil {
					return errdefs.Invalidf("%s: %v", ch, err)
				}
			} else {
				vols = strings.Fields(rest)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			if !path.IsAbs(rest) {
				rest = path.Join("/", cfg.WorkingDir, rest)
			}
			cfg.WorkingDir = rest
		case "STOPSIGNAL":
			if _, err := ParseSignal(rest); err != nil {
				return err
			}
			cfg.StopSignal = rest
		case "ONBUILD":
			cfg.OnBuild = append(cfg.OnBuild, rest)
		default:
			return errdefs.Invalidf("%s is not a valid change command", word)
		}
	}
	return nil
}

// execOrShell reads an instruction's JSON (exec) form, or wraps the shell
// form in the shell.
func execOrShell(s string, shell []string) []string {
	if strings.HasPrefix(s, "[") {
		var argv []string
		if json.Unmarshal([]byte(s), &argv) == nil {
			return argv
		}
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, shell...), s)
}

// keyValues reads "k=v k2="v 2"" pairs, or, for ENV, the old "k v" form.
func keyValues(s string, legacy bool) ([][2]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("needs at least one argument")
	}
	if !strings.Contains(words[0], "=") {
		if !legacy || len(words) < 2 {
			return nil, fmt.Errorf("syntax error: %q is not key=value", words[0])
		}
		k, v, _ := strings.Cut(strings.TrimSpace(s), " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("syntax error: %q is not key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// shellWords splits s at blanks, honouring quotes and backslashes.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := rune(s[i])
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != '\'' && ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case quote != 0:
			cur.WriteRune(ch)
		case ch == '"' || ch == '\'':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// Export is GET /containers/{id}/export: the container's root filesystem,
// flattened (its image and its changes; no volumes), as a tar.
func (s *Service) Export(ctx context.Context, ref string, w io.Writer) error {
	c, root, err := s.openRootfs(ctx, ref)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(w)
	tr := &treeWriter{ctx: ctx, tw: tw, links: map[[2]uint64]string{}}
	dfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(root.fd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dfd), "/")
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("export container %s: %w", c.ID, err)
	}
	slices.Sort(names)
	for _, n := range names {
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		err = tr.add(cfd, n)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	s.publish(c, events.ActionExport)
	return nil
}

// openRootfs opens the container's rootfs mount alone (not /proc/<pid>/root:
// no volumes, no /proc), mounting it when the container is not running.
func (s *Service) openRootfs(ctx context.Context, ref string) (*Container, *fsRoot, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return nil, nil, err
	}
	if !c.Running() {
		return s.openRoot(ctx, c.ID, false)
	}
	// A detached clone of the rootfs mount, not an fd on the mount itself:
	// an fd on it would make the unmount at the container's exit fail
	// (EBUSY) for as long as the export runs.
	fd, err := unix.OpenTree(unix.AT_FDCWD, s.rootfs(c.ID), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return nil, nil, fmt.Errorf("open rootfs of container %s: %w", ShortID(c.ID), err)
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil || unix.Stat(s.bundle(c.ID), &want) != nil || got.Dev == want.Dev {
		unix.Close(fd)
		return nil, nil, errdefs.Conflictf("container %s is not running (its rootfs is not mounted)", c.ID)
	}
	return c, &fsRoot{fd: fd}, nil
}

// Changes is GET /containers/{id}/changes: what the container added (A),
// changed (C) and deleted (D), read from its overlay upper directory,
// sorted by path.
func (s *Service) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	layers, ok := s.cfg.Images.(RootfsLayers)
	if !ok {
		return nil, errdefs.NotImplemented(errors.New("changes are not supported by this image store"))
	}
	c, err := s.index.get(ref)
	if err != nil {
		return nil, err
	}
	upper, lowers, err := layers.RootfsLayers(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	defer unix.Close(ufd)
	var lfds []int
	defer func() {
		for _, fd := range lfds {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
		}
		lfds = append(lfds, fd)
	}
	out := []container.FilesystemChange{}
	if err := walkChanges(ctx, ufd, "", lfds, &out); err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	out = hideInitPaths(out)
	slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// initPaths are what the runtime creates in every rootfs as mount points
// (Docker keeps them in an "-init" layer, so they never show in a diff).
var initPaths = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/dev", "/proc", "/sys", "/dev/pts", "/dev/shm", "/dev/console", "/.dockerenv"}

// hideInitPaths drops the init paths the container added, and the
// directories listed as changed only because they hold one.
func hideInitPaths(in []container.FilesystemChange) []container.FilesystemChange {
	var parents []string
	out := in[:0]
	for _, ch := range in {
		if ch.Kind == container.ChangeAdd && slices.Contains(initPaths, ch.Path) {
			parents = append(parents, path.Dir(ch.Path))
			continue
		}
		out = append(out, ch)
	}
	final := out[:0]
	for _, ch := range out {
		if ch.Kind == container.ChangeModify && slices.Contains(parents, ch.Path) &&
			!slices.ContainsFunc(out, func(o container.FilesystemChange) bool { return strings.HasPrefix(o.Path, ch.Path+"/") }) {
			continue
		}
		final = append(final, ch)
	}
	return final
}

// walkChanges lists the entries of the upper directory dfd (at rel) as
// changes. Nothing is followed: entries are read with *at calls on fds.
func walkChanges(ctx context.Context, dfd int, rel string, lowers []int, out *[]container.FilesystemChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := readDirNames(dfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := rel + "/" + n
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return err
		}
		if isWhiteout(&st) {
			*out = append(*out, container.FilesystemChange{Path: p, Kind: container.ChangeDelete})
			continue
		}
		kind := container.ChangeAdd
		if inLowers(lowers, strings.TrimPrefix(p, "/")) {
			kind = container.ChangeModify
		}
		*out = append(*out, container.FilesystemChange{Path: p, Kind: kind})
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
				continue // changed meanwhile
			}
			return err
		}
		sub := lowers
		if opaque(cfd) {
			sub = nil // the lower directories' children are hidden
		}
		err = walkChanges(ctx, cfd, p, sub, out)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(dfd int) ([]string, error) {
	nfd, err := unix.Dup(dfd)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(nfd)
	d := os.NewFile(uintptr(nfd), "dir")
	defer d.Close()
	return d.Readdirnames(-1)
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func opaque(fd int) bool {
	buf := make([]byte, 1)
	for _, k := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Fgetxattr(fd, k, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// inLowers tells whether rel exists in the merged lower directories
// (topmost first): the first layer that has it, as an entry or a whiteout,
// decides.
func inLowers(lowers []int, rel string) bool {
	for _, l := range lowers {
		fd, err := openat2(l, rel, unix.O_PATH|unix.O_NOFOLLOW, resolveInRoot)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			continue
		}
		return !isWhiteout(&st)
	}
	return false
}
