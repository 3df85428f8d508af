// Package engine is the composition root of the daemon: it builds every
// service from a Config, starts them in order and stops them in reverse. It
// wires; it owns no behaviour of its own beyond the daemon process's
// policies (internal/idle: memory given back when the API is quiet).
package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/build"
	"github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/dockerapi"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/idle"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/image/builtin"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/network"
	"github.com/berth/berth/internal/pid1/payload"
	"github.com/berth/berth/internal/remote"
	"github.com/berth/berth/internal/snapshot"
	"github.com/berth/berth/internal/volume"
)

// Config is everything the daemon is built from: dockerd's flags for where
// things live.
type Config struct {
	DataRoot string   // persistent state (default /var/lib/berth)
	ExecRoot string   // runtime state, gone at reboot (default /run/berth)
	Hosts    []string // listen addresses: unix:///path or tcp://host:port
	// Binary is the berth executable the monitor runs as (and re-executes
	// as each container's init); empty means this process's own.
	Binary string
	// HostNetNS is the network namespace bridges, veths, nftables rules
	// and DNS servers go in; empty means the daemon's own. Tests give a
	// fresh one, so they never touch the host's networking.
	HostNetNS string
	// InsecureRegistries are reached over plain HTTP (loopback ones
	// always are), as dockerd's --insecure-registry.
	InsecureRegistries []string
	// RegistryMirrors are Docker Hub mirrors tried in order before
	// registry-1.docker.io, as dockerd's --registry-mirror.
	RegistryMirrors []string
}

// DefaultConfig returns the defaults dockerd users expect, berth-named.
func DefaultConfig() Config {
	return Config{
		DataRoot: "/var/lib/berth",
		ExecRoot: "/run/berth",
		Hosts:    []string{api.DefaultHost},
	}
}

// Engine is a running daemon.
type Engine struct {
	cfg        Config
	lock       *os.File // flock on DataRoot: one daemon per data root
	listeners  []net.Listener
	server     *http.Server
	idle       *idle.Release // gives the heap back after bursts of calls
	events     *events.Bus
	meta       *metadata.DB
	state      *metadata.DB // runtime state under the exec root
	images     *image.Store
	containers *container.Service
	networks   *network.Service
}

// New prepares the daemon: makes its directories, takes the data root's lock
// and opens its listeners. Nothing is served until Serve.
func New(ctx context.Context, cfg Config) (_ *Engine, err error) {
	if cfg.DataRoot == "" || cfg.ExecRoot == "" {
		return nil, errdefs.Invalidf("data root and exec root must be set")
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{api.DefaultHost}
	}
	for i, m := range cfg.RegistryMirrors {
		v, err := remote.ValidateMirror(m, cfg.InsecureRegistries)
		if err != nil {
			return nil, err
		}
		cfg.RegistryMirrors[i] = v
	}
	e := &Engine{cfg: cfg}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if e.lock, err = lockDataRoot(cfg.DataRoot); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.ExecRoot, "berth.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	for _, h := range cfg.Hosts {
		l, err := listen(ctx, h)
		if err != nil {
			return nil, err
		}
		e.listeners = append(e.listeners, l)
	}
	id, err := engineID(cfg.DataRoot)
	if err != nil {
		return nil, err
	}
	e.events = events.New()
	if e.meta, err = metadata.Open(filepath.Join(cfg.DataRoot, "meta.db")); err != nil {
		return nil, err
	}
	volumes, err := volume.New(ctx, filepath.Join(cfg.DataRoot, "volumes"), volume.MetadataStore{DB: e.meta}, e.events)
	if err != nil {
		return nil, err
	}
	if e.images, err = openImages(ctx, cfg.DataRoot, e.meta); err != nil {
		return nil, err
	}
	if e.state, err = metadata.OpenState(cfg.ExecRoot); err != nil {
		return nil, err
	}
	if e.networks, err = network.New(ctx, network.Config{DB: e.meta, State: e.state, ExecRoot: cfg.ExecRoot, HostNetNS: cfg.HostNetNS, Events: e.events, PoolSize: 2}); err != nil {
		if os.Geteuid() == 0 {
			return nil, fmt.Errorf("networks: %w", err)
		}
		// Without root there are no bridges or rules to make: containers
		// get an empty network namespace, as with --network none.
		log.From(ctx).Warn("networking is unavailable; containers get no network", "err", err)
		e.networks = nil
	}
	var netw container.Network
	var netAPI dockerapi.NetworkBackend
	if e.networks != nil {
		netw = networks{svc: e.networks, images: e.images}
	}
	mon, err := startMonitor(ctx, cfg.ExecRoot, cfg.Binary)
	if err != nil {
		return nil, err
	}
	initPath, err := payload.Install(filepath.Join(cfg.DataRoot, "init"))
	if err != nil {
		return nil, fmt.Errorf("install the --init program: %w", err)
	}
	prober := &container.ExecProber{} // healthchecks run as execs
	e.containers, err = container.New(ctx, container.Config{
		DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot,
		Store: container.MetadataStore{DB: e.meta}, Images: images{e.images}, Spec: specGen{initPath: initPath}.makeSpec,
		Volumes: volumeAdapter{volumes},
		Monitor: mon, Events: e.events, Network: netw, Health: prober,
	})
	if err != nil {
		return nil, err
	}
	prober.Service = e.containers
	volumes.SetUsers(e.containers.VolumeUsers)
	builder := build.New(e.images, e.containers, e.meta, filepath.Join(cfg.DataRoot, "tmp"))
	builder.Cleanup(ctx)
	if e.networks != nil {
		netAPI = networkBackend{svc: e.networks, containers: e.containers}
	}
	e.idle = idle.New(ctx, 10*time.Second)
	e.server = &http.Server{
		Handler: e.idle.Wrap(dockerapi.New(dockerapi.Config{
			Logger:             log.From(ctx),
			DaemonID:           id,
			DataRoot:           cfg.DataRoot,
			Events:             e.events,
			Volumes:            volumes,
			Containers:         e.containers,
			Images:             e.images,
			Builder:            builder,
			Networks:           netAPI,
			InsecureRegistries: cfg.InsecureRegistries,
			RegistryMirrors:    cfg.RegistryMirrors,
		})),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       dockerapi.ConnContext,
		ErrorLog:          slog.NewLogLogger(log.From(ctx).Handler(), slog.LevelWarn),
	}
	return e, nil
}

// Serve serves the API on every listener until ctx is done, then shuts down
// gracefully and releases everything New took.
func (e *Engine) Serve(ctx context.Context) error {
	go e.containers.WatchExits(ctx)
	go e.idle.Run(ctx)
	errc := make(chan error, len(e.listeners))
	for _, l := range e.listeners {
		log.From(ctx).Info("API listening", "addr", l.Addr().String())
		go func() { errc <- e.server.Serve(l) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := e.server.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	e.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the listeners, the pid file and the data root's lock.
// It is safe to call more than once.
func (e *Engine) Close() {
	for _, l := range e.listeners {
		l.Close()
	}
	e.listeners = nil
	if e.networks != nil {
		e.networks.Close()
		e.networks = nil
	}
	if e.meta != nil {
		e.meta.Close()
		e.meta = nil
	}
	if e.state != nil {
		e.state.Close()
		e.state = nil
	}
	if e.lock != nil {
		os.Remove(filepath.Join(e.cfg.ExecRoot, "berth.pid"))
		e.lock.Close()
		e.lock = nil
	}
}

// openImages opens the content store, the snapshotter (overlayfs, or the
// copying fallback where overlay cannot be mounted) and the image store,
// and makes sure the built-in hello image is there.
func openImages(ctx context.Context, root string, db *metadata.DB) (*image.Store, error) {
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	var sn snapshot.Snapshotter
	overlayRoot := filepath.Join(root, "snapshots", "overlay")
	if err := os.MkdirAll(overlayRoot, 0o700); err != nil {
		return nil, err
	}
	if perr := snapshot.OverlaySupported(overlayRoot); perr == nil {
		sn, err = snapshot.NewOverlay(overlayRoot)
	} else {
		log.From(ctx).Warn("overlayfs cannot be used here; falling back to copying snapshots", "err", perr)
		sn, err = snapshot.NewNative(filepath.Join(root, "snapshots", "native"))
	}
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	store, err := image.NewStore(image.Config{DB: db, Content: cs, Snapshotter: sn, TempDir: tmp})
	if err != nil {
		return nil, err
	}
	if _, err := builtin.Ensure(ctx, store); err != nil {
		return nil, fmt.Errorf("built-in hello image: %w", err)
	}
	return store, nil
}

// engineID returns the daemon's identity, made once and kept in the data
// root, as dockerd's engine-id.
func engineID(root string) (string, error) {
	path := filepath.Join(root, "engine-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write engine id: %w", err)
	}
	return id, nil
}

// lockDataRoot takes an exclusive flock on the data root, so two daemons
// never share one: the second fails at once, naming the first's pid.
func lockDataRoot(root string) (*os.File, error) {
	path := filepath.Join(root, "berth.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		return nil, errdefs.Conflictf("data root %s is in use by another berth daemon (pid %s); give each daemon its own --data-root", root, strings.TrimSpace(string(pid)))
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// listen opens one -H address. A unix socket left by a dead daemon is
// replaced; one a live daemon answers on is an error.
func listen(ctx context.Context, host string) (net.Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		return nil, errdefs.Invalidf("host %q: want unix:///path or tcp://addr:port", host)
	}
	switch proto {
	case "unix":
		return listenUnix(addr)
	case "tcp":
		log.From(ctx).Warn("the API on TCP has no authentication: anyone who reaches it is root on this host", "addr", addr)
		return net.Listen("tcp", addr)
	}
	return nil, errdefs.Invalidf("host %q: unsupported protocol %q (want unix or tcp)", host, proto)
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errdefs.Conflictf("socket %s is in use by a running daemon", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	// Create the socket with no access for others, then open it to the
	// owner and the berth group: never a moment of wider access.
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	gid := 0
	if g, err := user.LookupGroup("berth"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil && os.Geteuid() == 0 {
		l.Close()
		return nil, fmt.Errorf("chown socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return l, nil
}
