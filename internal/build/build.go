// Package build executes Dockerfiles the way Docker's legacy builder does:
// buildkit's parser reads the Dockerfile, and every step after parsing is
// berth's — RUN runs a container through the container service and commits
// its changes as a layer, COPY and ADD write into a prepared root
// filesystem, the other instructions change the image config. Each step
// makes an (unnamed) image, found again through a layer cache keyed on the
// parent image, the instruction, the build args in scope and the content
// of the files it copies.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/metadata"
)

// Options are `docker build` flags.
type Options struct {
	Dockerfile string             // path in the context; "" is "Dockerfile"
	Tags       []string           // -t, several allowed
	Target     string             // --target stage
	NoCache    bool               // --no-cache
	Pull       bool               // --pull: there is no network, so a missing base is an error either way
	BuildArgs  map[string]*string // --build-arg; nil value: take it from the environment (unset here)
	Labels     map[string]string  // --label
	Platform   string             // --platform (accepted; only the host platform is built)
	Network    string             // --network for RUN containers ("" or "default": the daemon's default)
	// ContextDir is the client's context directory, when the client runs
	// on the daemon's host (berth's CLI as root): it is copied, and the
	// tarball is not read. The caller closes it.
	ContextDir *os.Root
}

// Builder builds images.
type Builder struct {
	images     *image.Store
	containers *container.Service
	db         *metadata.DB
	tmpDir     string
	known      statSums // context files' sums by stat, for ContextDir builds
}

// New returns a builder that keeps build contexts under tmpDir while it
// works, and its cache records in db.
func New(images *image.Store, containers *container.Service, db *metadata.DB, tmpDir string) *Builder {
	return &Builder{images: images, containers: containers, db: db, tmpDir: tmpDir}
}

// Result is what a build made.
type Result struct {
	ID   string   // the image ID
	Tags []string // the names given to it
}

// StepError is a build step that failed.
type StepError struct {
	Step    int
	Command string
	Err     error
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Build extracts the build context tarball ctxTar (plain or gzip'd), or
// copies opts.ContextDir, under the builder's temp dir, builds its Dockerfile and tags the result; out
// receives the text Docker's legacy builder prints ("Step 1/3 : FROM …").
// Nothing is tagged unless every step worked; intermediate containers and
// root filesystems are removed whatever happens.
func (b *Builder) Build(ctx context.Context, ctxTar io.Reader, opts Options, out io.Writer) (*Result, error) {
	for _, t := range opts.Tags {
		if _, err := image.ParseReference(t); err != nil {
			return nil, errdefs.Invalidf("invalid tag %q: %v", t, err)
		}
	}
	if err := os.MkdirAll(b.tmpDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.tmpDir, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctxDir := filepath.Join(dir, "context")
	dfName := dockerfileName(opts)
	var sums fileSums
	if opts.ContextDir != nil {
		sums, err = copyContext(ctx, opts.ContextDir, ctxDir, dfName, &b.known)
	} else {
		sums, err = extractContext(ctx, ctxTar, ctxDir)
	}
	if err != nil {
		return nil, err
	}
	dfPath, err := resolveIn(ctxDir, dfName)
	if err != nil {
		return nil, err
	}
	df, err := os.ReadFile(dfPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.Invalidf("Cannot locate specified Dockerfile: %s", dfName)
	}
	if err != nil {
		return nil, err
	}
	// A tarball holds what the client chose to send; copyContext never
	// copied what .dockerignore excludes.
	if opts.ContextDir == nil {
		if err := applyDockerignore(ctxDir, dfName); err != nil {
			return nil, err
		}
	}
	res, err := parser.Parse(strings.NewReader(string(df)))
	if err != nil {
		return nil, errdefs.Invalidf("dockerfile parse error: %v", err)
	}
	if len(res.AST.Children) == 0 {
		return nil, errdefs.Invalidf("the Dockerfile (%s) cannot be empty", dfName)
	}
	var labelNode *parser.Node
	if len(opts.Labels) > 0 {
		keys := make([]string, 0, len(opts.Labels))
		for k := range opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var sb strings.Builder
		sb.WriteString("LABEL")
		for _, k := range keys {
			fmt.Fprintf(&sb, " %q=%q", k, opts.Labels[k])
		}
		lr, err := parser.Parse(strings.NewReader(sb.String()))
		if err != nil {
			return nil, errdefs.Invalidf("--label: %v", err)
		}
		labelNode = lr.AST.Children[0]
	}
	bs := &buildState{b: b, opts: opts, out: out, ctxDir: ctxDir, tmp: dir, lex: shell.NewLex(res.EscapeToken), stages: map[string]string{}, labels: labelNode, sums: sums}
	id, err := bs.run(ctx, res.AST)
	if err != nil {
		return nil, err
	}
	for _, t := range opts.Tags {
		if err := b.images.Tag(ctx, id, t); err != nil {
			return nil, err
		}
	}
	return &Result{ID: id, Tags: opts.Tags}, nil
}

// dockerfileName is the Dockerfile's name in the context.
func dockerfileName(opts Options) string {
	if opts.Dockerfile == "" {
		return "Dockerfile"
	}
	return opts.Dockerfile
}

// buildState is one build in progress.
type buildState struct {
	b      *Builder
	opts   Options
	out    io.Writer
	ctxDir string
	sums   fileSums // of the context's files
	tmp    string
	lex    *shell.Lex

	stages     map[string]string // stage name or index → image ID
	stageNames []string
	usedArgs   map[string]bool
	labels     *parser.Node      // LABEL made of --label flags, for the final image
	meta       map[string]string // ARGs declared before the first FROM

	// the stage being built
	imageID string // "" for scratch
	config  dockerspec.DockerOCIImageConfig
	cmdSet  bool              // the stage has its own CMD
	args    map[string]string // ARGs in scope and their values
	argKeys []string
	step    int
	total   int
}

func (s *buildState) printf(format string, a ...any) {
	fmt.Fprintf(s.out, format, a...)
}

func (s *buildState) run(ctx context.Context, ast *parser.Node) (string, error) {
	metaArgs := map[string]string{}
	var metaKeys []string
	s.total = len(ast.Children)
	if s.labels != nil {
		s.total++
	}
	inStage := false
	targetFound := s.opts.Target == ""
	done := false
	for _, n := range ast.Children {
		if done {
			break
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		s.step++
		cmd, err := instructions.ParseInstruction(n)
		if err != nil {
			return "", errdefs.Invalidf("dockerfile parse error on line %d: %v", n.StartLine, err)
		}
		if st, ok := cmd.(*instructions.Stage); ok {
			if inStage {
				s.finishStage()
				if s.opts.Target != "" && strings.EqualFold(s.stageNames[len(s.stageNames)-1], s.opts.Target) {
					targetFound = true
					done = true
					s.step--
					break
				}
			}
			inStage = true
			s.printf("Step %d/%d : %s\n", s.step, s.total, n.Original)
			if err := s.from(ctx, st, metaArgs, metaKeys); err != nil {
				return "", &StepError{Step: s.step, Command: n.Original, Err: err}
			}
			continue
		}
		if !inStage {
			a, ok := cmd.(*instructions.ArgCommand)
			if !ok {
				return "", errdefs.Invalidf("no build stage in current context")
			}
			s.printf("Step %d/%d : %s\n", s.step, s.total, n.Original)
			env := shell.EnvsFromSlice(envSlice(metaArgs, metaKeys))
			for _, kv := range a.Args {
				v := ""
				if kv.Value != nil {
					if v, _, err = s.lex.ProcessWord(*kv.Value, env); err != nil {
						return "", errdefs.Invalidf("ARG %s: %v", kv.Key, err)
					}
				}
				if bv, ok := s.opts.BuildArgs[kv.Key]; ok && bv != nil {
					v = *bv
					s.markUsed(kv.Key)
				}
				if _, ok := metaArgs[kv.Key]; !ok {
					metaKeys = append(metaKeys, kv.Key)
				}
				metaArgs[kv.Key] = v
			}
			continue
		}
		s.printf("Step %d/%d : %s\n", s.step, s.total, n.Original)
		if err := s.dispatch(ctx, n, cmd); err != nil {
			var se *StepError
			if errors.As(err, &se) {
				return "", err
			}
			return "", &StepError{Step: s.step, Command: n.Original, Err: err}
		}
	}
	if !done {
		s.finishStage()
		if s.opts.Target != "" && strings.EqualFold(s.stageNames[len(s.stageNames)-1], s.opts.Target) {
			targetFound = true
		}
	}
	if !targetFound {
		return "", errdefs.Invalidf("failed to reach build target %s in Dockerfile", s.opts.Target)
	}
	if s.labels != nil {
		s.step++
		s.printf("Step %d/%d : %s\n", s.step, s.total, s.labels.Original)
		cmd, err := instructions.ParseInstruction(s.labels)
		if err != nil {
			return "", errdefs.Invalidf("--label: %v", err)
		}
		if err := s.dispatch(ctx, s.labels, cmd); err != nil {
			return "", &StepError{Step: s.step, Command: s.labels.Original, Err: err}
		}
	}
	var unused []string
	for k := range s.opts.BuildArgs {
		if !s.usedArgs[k] && !builtinArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		s.printf("[Warning] One or more build-args %v were not consumed\n", unused)
	}
	if s.imageID == "" {
		// FROM scratch with nothing else: an empty image.
		img, err := s.b.images.BuildStep(ctx, image.BuildStepOptions{Config: s.config})
		if err != nil {
			return "", err
		}
		s.imageID = img.ID.String()
	}
	return s.imageID, nil
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// builtinArgs are the proxy args Docker accepts without an ARG.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

func (s *buildState) markUsed(k string) {
	if s.usedArgs == nil {
		s.usedArgs = map[string]bool{}
	}
	s.usedArgs[k] = true
}

func (s *buildState) finishStage() {
	idx := fmt.Sprint(len(s.stageNames) - 1)
	s.stages[idx] = s.imageID
	if name := s.stageNames[len(s.stageNames)-1]; name != "" {
		s.stages[strings.ToLower(name)] = s.imageID
	}
}

func envSlice(m map[string]string, keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// from starts a stage.
func (s *buildState) from(ctx context.Context, st *instructions.Stage, metaArgs map[string]string, metaKeys []string) error {
	env := shell.EnvsFromSlice(envSlice(metaArgs, metaKeys))
	base, _, err := s.lex.ProcessWord(st.BaseName, env)
	if err != nil {
		return errdefs.Invalidf("FROM %s: %v", st.BaseName, err)
	}
	if st.Platform != "" {
		p, _, err := s.lex.ProcessWord(st.Platform, env)
		if err != nil {
			return errdefs.Invalidf("FROM --platform: %v", err)
		}
		if p != "" {
			if _, err := image.ParsePlatform(p); err != nil {
				return errdefs.Invalidf("FROM --platform=%s: %v", p, err)
			}
		}
	}
	for _, k := range metaKeys {
		if _, ok := s.opts.BuildArgs[k]; ok {
			s.markUsed(k)
		}
	}
	s.stageNames = append(s.stageNames, st.Name)
	s.cmdSet = false
	s.args = map[string]string{}
	s.argKeys = nil
	s.meta = metaArgs
	s.config = dockerspec.DockerOCIImageConfig{}
	s.imageID = ""
	if base == "" {
		return errdefs.Invalidf("base name (%s) should not be blank", st.BaseName)
	}
	if strings.EqualFold(base, "scratch") {
		s.printf(" ---> \n")
		s.config.Env = []string{defaultPath}
		return nil
	}
	if id, ok := s.stages[strings.ToLower(base)]; ok {
		s.imageID = id
	} else {
		img, _, err := s.b.images.Resolve(ctx, base)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.NotFoundf("pull access denied for %s: the image is not present locally and berth builds do not pull (no network): %v", base, err)
			}
			return err
		}
		s.imageID = img.ID.String()
	}
	img, _, err := s.b.images.Resolve(ctx, s.imageID)
	if err != nil {
		return err
	}
	s.config = img.Config.Config
	s.config.Env = append([]string(nil), s.config.Env...)
	if !hasEnv(s.config.Env, "PATH") {
		// As Docker: a base without PATH gets the default one.
		s.config.Env = append(s.config.Env, defaultPath)
	}
	s.printf(" ---> %s\n", image.ShortID(img.ID))
	if len(s.config.OnBuild) > 0 {
		triggers := s.config.OnBuild
		s.config.OnBuild = nil
		s.printf("# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			s.printf("s")
		}
		s.printf("\n")
		for _, t := range triggers {
			r, err := parser.Parse(strings.NewReader(t))
			if err != nil {
				return errdefs.Invalidf("ONBUILD %s: %v", t, err)
			}
			for _, n := range r.AST.Children {
				cmd, err := instructions.ParseInstruction(n)
				if err != nil {
					return errdefs.Invalidf("ONBUILD %s: %v", t, err)
				}
				if _, ok := cmd.(*instructions.Stage); ok {
					return errdefs.Invalidf("FROM is not allowed as an ONBUILD trigger")
				}
				if err := s.dispatch(ctx, n, cmd); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// envGetter is the environment word expansion sees: the image's ENV plus
// the ARGs in scope (ENV wins).
func (s *buildState) envGetter() shell.EnvGetter {
	return shell.EnvsFromSlice(append(envSlice(s.args, s.argKeys), s.config.Env...))
}

func (s *buildState) expand(cmd any) error {
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		env := s.envGetter()
		return e.Expand(func(w string) (string, error) {
			v, _, err := s.lex.ProcessWord(w, env)
			return v, err
		})
	}
	return nil
}

// dispatch runs one instruction of the current stage.
func (s *buildState) dispatch(ctx context.Context, n *parser.Node, cmd any) error {
	if err := s.expand(cmd); err != nil {
		return errdefs.Invalidf("%s: %v", n.Original, err)
	}
	cfg := s.config
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, have := "", false
			if kv.Value != nil {
				v, have = *kv.Value, true
			} else if mv, ok := s.meta[kv.Key]; ok {
				v, have = mv, true
			}
			if bv, ok := s.opts.BuildArgs[kv.Key]; ok && bv != nil {
				v, have = *bv, true
				s.markUsed(kv.Key)
			}
			if !have {
				continue // declared without a value: not in RUN's environment (as Docker)
			}
			if _, ok := s.args[kv.Key]; !ok {
				s.argKeys = append(s.argKeys, kv.Key)
			}
			s.args[kv.Key] = v
		}
		return s.commitConfig(ctx, n, cfg, "ARG "+argString(c))
	case *instructions.EnvCommand:
		cfg.Env = append([]string(nil), cfg.Env...)
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
		return s.commitConfig(ctx, n, cfg, "ENV "+kvString(c.Env))
	case *instructions.LabelCommand:
		labels := map[string]string{}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		for _, kv := range c.Labels {
			labels[kv.Key] = kv.Value
		}
		cfg.Labels = labels
		return s.commitConfig(ctx, n, cfg, "LABEL "+kvString(c.Labels))
	case *instructions.MaintainerCommand:
		return s.commitConfig(ctx, n, cfg, "MAINTAINER "+c.Maintainer)
	case *instructions.WorkdirCommand:
		wd := c.Path // as Docker: an absolute path is kept as written
		if !path.IsAbs(wd) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			wd = path.Join(base, wd)
		}
		cfg.WorkingDir = wd
		// Docker creates the directory (as a layer only if it was missing).
		return s.workdir(ctx, n, cfg)
	case *instructions.UserCommand:
		cfg.User = c.User
		return s.commitConfig(ctx, n, cfg, "USER "+c.User)
	case *instructions.ExposeCommand:
		ports := map[string]struct{}{}
		for k := range cfg.ExposedPorts {
			ports[k] = struct{}{}
		}
		for _, p := range c.Ports {
			for _, ep := range expandPorts(p) {
				if ep == "" {
					return errdefs.Invalidf("EXPOSE: invalid port %q", p)
				}
				ports[ep] = struct{}{}
			}
		}
		cfg.ExposedPorts = ports
		return s.commitConfig(ctx, n, cfg, "EXPOSE "+strings.Join(c.Ports, " "))
	case *instructions.VolumeCommand:
		vols := map[string]struct{}{}
		for k := range cfg.Volumes {
			vols[k] = struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return errdefs.Invalidf("VOLUME specified can not be an empty string")
			}
			vols[v] = struct{}{}
		}
		cfg.Volumes = vols
		return s.commitConfig(ctx, n, cfg, "VOLUME "+fmt.Sprint(c.Volumes))
	case *instructions.CmdCommand:
		cfg.Cmd = s.cmdLine(c.ShellDependantCmdLine, cfg)
		s.cmdSet = true
		return s.commitConfig(ctx, n, cfg, "CMD "+fmt.Sprintf("%q", cfg.Cmd))
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = s.cmdLine(c.ShellDependantCmdLine, cfg)
		if len(c.CmdLine) == 0 || (len(c.CmdLine) == 1 && c.CmdLine[0] == "" && c.PrependShell) {
			cfg.Entrypoint = nil
		}
		if !s.cmdSet {
			cfg.Cmd = nil // ENTRYPOINT resets a CMD inherited from the base
		}
		return s.commitConfig(ctx, n, cfg, "ENTRYPOINT "+fmt.Sprintf("%q", cfg.Entrypoint))
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
		return s.commitConfig(ctx, n, cfg, "SHELL "+fmt.Sprintf("%q", c.Shell))
	case *instructions.StopSignalCommand:
		if _, err := container.ParseSignal(c.Signal); err != nil {
			return errdefs.Invalidf("STOPSIGNAL: %v", err)
		}
		cfg.StopSignal = c.Signal
		return s.commitConfig(ctx, n, cfg, "STOPSIGNAL "+c.Signal)
	case *instructions.HealthCheckCommand:
		if cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE" {
			s.printf("Note: overriding previous HEALTHCHECK: %v\n", cfg.Healthcheck.Test)
		}
		h := *c.Health
		cfg.Healthcheck = &h
		return s.commitConfig(ctx, n, cfg, "HEALTHCHECK "+fmt.Sprintf("%q", h.Test))
	case *instructions.OnbuildCommand:
		expr := strings.TrimSpace(c.Expression)
		switch strings.ToUpper(strings.Fields(expr + " x")[0]) {
		case "ONBUILD":
			return errdefs.Invalidf("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case "FROM", "MAINTAINER":
			return errdefs.Invalidf("%s isn't allowed as an ONBUILD trigger", strings.Fields(expr)[0])
		}
		cfg.OnBuild = append(append([]string(nil), cfg.OnBuild...), expr)
		return s.commitConfig(ctx, n, cfg, "ONBUILD "+expr)
	case *instructions.RunCommand:
		return s.runStep(ctx, n, c)
	case *instructions.CopyCommand:
		return s.copyStep(ctx, n, copySpec{
			SourcesAndDest: c.SourcesAndDest, From: c.From, Chown: c.Chown, Chmod: c.Chmod, Name: "COPY",
		})
	case *instructions.AddCommand:
		return s.copyStep(ctx, n, copySpec{
			SourcesAndDest: c.SourcesAndDest, Chown: c.Chown, Chmod: c.Chmod, Name: "ADD", Add: true,
		})
	default:
		return errdefs.NotImplemented(fmt.Errorf("%s is not supported by berth's builder", strings.ToUpper(n.Value)))
	}
}

func argString(c *instructions.ArgCommand) string {
	var parts []string
	for _, a := range c.Args {
		if a.Value != nil {
			parts = append(parts, a.Key+"="+*a.Value)
		} else {
			parts = append(parts, a.Key)
		}
	}
	return strings.Join(parts, " ")
}

func kvString(kvs instructions.KeyValuePairs) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, kv.Key+"="+kv.Value)
	}
	return strings.Join(parts, " ")
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// expandPorts turns "80", "80/udp" and "8000-8002/tcp" into nat port keys.
func expandPorts(p string) []string {
	proto := "tcp"
	if i := strings.IndexByte(p, '/'); i >= 0 {
		proto = strings.ToLower(p[i+1:])
		p = p[:i]
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return []string{""}
	}
	lo, hi, isRange := strings.Cut(p, "-")
	var a, z int
	if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || a < 0 || a > 65535 || fmt.Sprint(a) != lo {
		return []string{""}
	}
	z = a
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &z); err != nil || z < a || z > 65535 || fmt.Sprint(z) != hi {
			return []string{""}
		}
	}
	var out []string
	for i := a; i <= z; i++ {
		out = append(out, fmt.Sprintf("%d/%s", i, proto))
	}
	return out
}

// cmdLine is a CMD/ENTRYPOINT/RUN argv: the shell form gets the SHELL prefix.
func (s *buildState) cmdLine(c instructions.ShellDependantCmdLine, cfg dockerspec.DockerOCIImageConfig) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
}

// commitConfig finishes a step that only changes the config.
func (s *buildState) commitConfig(ctx context.Context, n *parser.Node, cfg dockerspec.DockerOCIImageConfig, createdBy string) error {
	return s.cached(ctx, n, cfg, "", func() (string, error) {
		img, err := s.b.images.BuildStep(ctx, image.BuildStepOptions{
			Parent: s.imageID, Config: cfg,
			History: ocispec.History{CreatedBy: "/bin/sh -c #(nop)  " + createdBy},
		})
		if err != nil {
			return "", err
		}
		return img.ID.String(), nil
	})
}

// cached looks the step up in the layer cache, or runs make and records
// its image there; either way the stage moves on to the step's image.
func (s *buildState) cached(ctx context.Context, n *parser.Node, cfg dockerspec.DockerOCIImageConfig, contentHash string, make func() (string, error)) error {
	key := s.cacheKey(n, cfg, contentHash)
	if !s.opts.NoCache {
		if id, ok := s.b.cacheGet(ctx, key); ok {
			s.printf(" ---> Using cache\n ---> %s\n", shortID(id))
			s.imageID = id
			s.config = cfg
			return nil
		}
	}
	id, err := make()
	if err != nil {
		return err
	}
	s.b.cachePut(key, id)
	s.printf(" ---> %s\n", shortID(id))
	s.imageID = id
	s.config = cfg
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
