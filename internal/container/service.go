package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/logs"
	"github.com/berth/berth/internal/monitor"
	"github.com/berth/berth/internal/mountinfo"
)

// Image is what the container service needs to know of an image.
type Image struct {
	ID     string // sha256:...
	Name   string // as `docker ps` shows it
	Config container.Config
}

// Images is what the container service needs of the image service.
type Images interface {
	// Resolve finds a local image by reference, ID or ID prefix.
	Resolve(ctx context.Context, ref string) (Image, error)
	// PrepareRootfs makes the writable root filesystem of container id on
	// top of image and mounts it at target; volatile (for --rm) skips every
	// sync of its writes, unmount included.
	PrepareRootfs(ctx context.Context, id, imageID, target string, volatile bool) error
	// UnmountRootfs unmounts it; its content stays.
	UnmountRootfs(ctx context.Context, id, target string) error
	// RemoveRootfs deletes it.
	RemoveRootfs(ctx context.Context, id string) error
	// RootfsIDs lists the IDs that have one (builds' too).
	RootfsIDs(ctx context.Context) ([]string, error)
}

// SpecFiles are the host paths a container's spec binds in.
type SpecFiles struct {
	Rootfs                                  string        // the mounted root filesystem
	HostnamePath, HostsPath, ResolvConfPath string        // bound at /etc/...
	Mounts                                  []specs.Mount // volumes and binds
	NetNSPath                               string        // the network namespace to join; empty: a new one
	PidNSPath, IPCNSPath                    string        // another container's namespaces to join (--pid/--ipc container:)
	ShmPath                                 string        // a host directory bound at /dev/shm (--ipc shareable, container:)
}

// Network is what the container service needs of the network service.
type Network interface {
	// Attach gives c its network namespace and endpoints before it
	// starts; nil (and no error) when its network mode needs none.
	Attach(ctx context.Context, c *Container) (*NetAttachment, error)
	// Detach undoes Attach; a container with nothing attached is fine.
	Detach(ctx context.Context, id string) error
	// Settings is the NetworkSettings of inspect.
	Settings(id string) *container.NetworkSettings
	// Attached lists the containers that have endpoints.
	Attached() ([]string, error)
}

// NetAttachment is what a container's network gives its spec and /etc.
type NetAttachment struct {
	NetNSPath  string
	IP         string   // on its primary network, for /etc/hosts
	Hosts      []string // extra /etc/hosts lines (links)
	Nameserver string   // the embedded DNS server; empty: the host's resolvers
}

// SpecFunc makes the OCI spec of c from its configuration and its image's.
type SpecFunc func(ctx context.Context, c *Container, img Image, files SpecFiles) (*specs.Spec, error)

// Store persists container records.
type Store interface {
	Put(ctx context.Context, c *Container) error
	Delete(ctx context.Context, id string) error
	All(ctx context.Context) ([]*Container, error)
}

// Config is what the service is built from.
type Config struct {
	DataRoot string // containers/<id>/ holds logs and exit records
	ExecRoot string // containers/<id>/ holds the bundle and the mounted rootfs
	Store    Store
	Images   Images
	Spec     SpecFunc
	Volumes  Volumes // nil: containers that ask for volumes are refused
	Monitor  *monitor.Client
	Events   *eventbus.Bus
	Network  Network // nil: containers get an empty network namespace
	// Health runs healthchecks (an exec); nil: healthchecks are not run.
	Health HealthProber
}

// Service owns the containers. All methods are safe for concurrent use.
type Service struct {
	cfg   Config
	index *index

	mu sync.Mutex // guards waiters and pending
	// waiters get the exit code at a container's next exit (key: its ID)
	// or removal (key: "removed:"+ID); each channel has room for it.
	waiters map[string][]chan int
	// pending are attach requests made before the container started; Start
	// connects them to the process before letting it run.
	pending map[string][]*pendingAttach
	// restarts are the pending restarts by restart policy, and the last
	// backoff delay of each container (guarded by mu).
	restarts map[string]*pendingRestart
	// restartsByUser counts the user's restarts in progress per container
	// (guarded by mu): an --rm container's exit during one does not
	// remove it.
	restartsByUser map[string]int
	// ops serializes state changes of one container (start, stop, remove).
	ops keyedMutex
	// lifetime is the daemon's context: restarts by policy run under it.
	lifetime context.Context
	// health are the healthcheck loops (health.go).
	health healthMonitors
	// execs are the exec instances by id (*execInstance; exec.go).
	execs sync.Map
	// reclaiming are the removed containers whose disk (rootfs snapshot,
	// directories) is still being deleted, each closed when done
	// (guarded by mu; reclaim.go).
	reclaiming map[string]chan struct{}
}

type pendingRestart struct {
	timer *time.Timer // nil once fired or cancelled
	delay time.Duration
}

// New loads the containers the store has. Call Reconcile once the monitor
// answers, to match them with what is really running.
func New(ctx context.Context, cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, index: newIndex(), waiters: map[string][]chan int{}, pending: map[string][]*pendingAttach{},
		restarts: map[string]*pendingRestart{}, restartsByUser: map[string]int{}, lifetime: context.WithoutCancel(ctx),
		reclaiming: map[string]chan struct{}{}}
	all, err := cfg.Store.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load containers: %w", err)
	}
	for _, c := range all {
		s.index.add(c)
	}
	s.reclaimOrphans(ctx) // reclaim.go
	return s, nil
}

func (s *Service) dir(id string) string    { return filepath.Join(s.cfg.DataRoot, "containers", id) }
func (s *Service) bundle(id string) string { return filepath.Join(s.cfg.ExecRoot, "containers", id) }
func (s *Service) rootfs(id string) string { return filepath.Join(s.bundle(id), "rootfs") }

// Get returns the container ref names (ID, name or ID prefix). The record
// is a snapshot: changes make a new one.
func (s *Service) Get(ref string) (*Container, error) { return s.index.get(ref) }

// mutate applies fn to a copy of container id's current record, persists
// the copy and publishes it in the index. Records are never changed in
// place, so a reader holds a consistent snapshot without locking.
// Preconditions: the caller holds s.ops.lock(id).
func (s *Service) mutate(ctx context.Context, id string, fn func(c *Container)) (*Container, error) {
	cur, err := s.index.get(id)
	if err != nil {
		return nil, err
	}
	next := *cur
	fn(&next)
	if err := s.cfg.Store.Put(ctx, &next); err != nil {
		return cur, fmt.Errorf("record container %s: %w", ShortID(id), err)
	}
	s.index.add(&next)
	return &next, nil
}

// setTransient is mutate without the store: for the states an --rm
// container passes through between its exit and its removal. They need
// not survive a crash, because recovery ends the same way without them:
// the record still says running, Reconcile finds the task gone, and
// HandleExit removes the container. Skipping them saves two commits
// (four fsyncs) on every `run --rm`.
func (s *Service) setTransient(id string, fn func(c *Container)) (*Container, error) {
	cur, err := s.index.get(id)
	if err != nil {
		return nil, err
	}
	next := *cur
	fn(&next)
	s.index.add(&next)
	return &next, nil
}

// CreateRequest is POST /containers/create.
type CreateRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
}

// Create makes a container: its record, name, directory and root
// filesystem. Nothing is left behind when it fails.
func (s *Service) Create(ctx context.Context, req CreateRequest) (_ *Container, err error) {
	if req.Config == nil || req.Config.Image == "" {
		return nil, errdefs.Invalidf("no image specified")
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := validateHostConfig(hc); err != nil {
		return nil, err
	}
	if err := ValidateHealthConfig(req.Config.Healthcheck); err != nil { // health.go
		return nil, err
	}
	img, err := s.cfg.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		return nil, err
	}
	c := &Container{ID: NewID(), Created: time.Now().UTC(), Config: req.Config, HostConfig: hc, Image: img.ID, ImageRef: req.Config.Image}
	if req.Networking != nil {
		c.Endpoints = req.Networking.EndpointsConfig
	}
	c.Path, c.Args = command(req.Config, img.Config)
	if len(c.Path) == 0 && len(c.Args) == 0 {
		return nil, errdefs.Invalidf("no command specified")
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = logs.JSONFile
	}
	if err := logs.ValidateConfig(logs.Config{Type: hc.LogConfig.Type, Config: hc.LogConfig.Config}); err != nil {
		return nil, err
	}
	if req.Name != "" {
		if c.Name, err = ValidateName(req.Name); err != nil {
			return nil, err
		}
		if err := s.index.reserve(c.Name, c.ID); err != nil {
			return nil, err
		}
	} else {
		c.Name = GenerateName(s.index.taken)
		if err := s.index.reserve(c.Name, c.ID); err != nil {
			return nil, err
		}
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			s.index.release(c.Name, c.ID)
		}
	}()
	if err := os.MkdirAll(s.dir(c.ID), 0o710); err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(s.dir(c.ID)) })
	// Anonymous volumes come from the image's VOLUMEs and from the
	// container's own Config.Volumes (where the docker CLI puts -v /path).
	anonymous := maps.Clone(img.Config.Volumes)
	if len(req.Config.Volumes) > 0 && anonymous == nil {
		anonymous = map[string]struct{}{}
	}
	maps.Copy(anonymous, req.Config.Volumes)
	if c.Mounts, err = s.resolveMounts(ctx, hc, anonymous); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.removeAnonymousVolumes(context.WithoutCancel(ctx), c) })
	c.State.Status = StatusCreated
	if err := s.cfg.Store.Put(ctx, c); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.cfg.Store.Delete(context.WithoutCancel(ctx), c.ID) })
	s.index.add(c)
	undo = append(undo, func() { s.index.remove(c) })
	s.publish(c, events.ActionCreate)
	return c, nil
}

// command is Docker's rule for what a container runs: the container's
// entrypoint (or the image's, unless the container sets one, which also
// drops the image's cmd), followed by the container's cmd or the image's.
func command(cfg *container.Config, img container.Config) (string, []string) {
	// Docker's merge: with no entrypoint of its own (nil or empty) the
	// container takes the image's Cmd when it has none, and the image's
	// Entrypoint only when its own is nil; an entrypoint of its own drops
	// the image's Cmd. --entrypoint "" arrives as [""] and means none.
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if len(entrypoint) == 0 {
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
		if entrypoint == nil {
			entrypoint = img.Entrypoint
		}
	}
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	argv := append(append([]string{}, entrypoint...), cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

func validateHostConfig(hc *container.HostConfig) error {
	switch hc.RestartPolicy.Name {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return errdefs.Invalidf("invalid restart policy '%s'", hc.RestartPolicy.Name)
	}
	if hc.RestartPolicy.MaximumRetryCount < 0 {
		return errdefs.Invalidf("invalid restart policy: maximum retry count cannot be negative")
	}
	if hc.RestartPolicy.MaximumRetryCount > 0 && hc.RestartPolicy.Name != "on-failure" {
		return errdefs.Invalidf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return errdefs.Invalidf("can't create 'AutoRemove' container with restart policy")
	}
	return nil
}

// Start runs a created or stopped container, as a user asks: the
// restart count starts again from zero.
func (s *Service) Start(ctx context.Context, ref string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	unlock := s.ops.lock(c.ID)
	s.cancelRestart(c.ID, true)
	err = s.startLocked(ctx, c.ID, false)
	unlock()
	// As Docker: a --rm container whose start failed is removed (the
	// docker CLI waits for that), unless it was not tried at all: it runs
	// already, or it is being removed. A refusal to share another
	// container's namespaces (a conflict too) is a failed start.
	if err != nil && c.HostConfig.AutoRemove && !errors.Is(err, errdefs.ErrNotModified) && !s.beingRemoved(c.ID) {
		if rerr := s.Remove(context.WithoutCancel(ctx), c.ID, RemoveOptions{Force: true}); rerr != nil {
			log.From(ctx).Error("--rm after a failed start: removing the container", "container", c.ID, "err", rerr)
		}
	}
	return err
}

// beingRemoved says whether container id is on its way out (or gone).
func (s *Service) beingRemoved(id string) bool {
	c, err := s.index.get(id)
	return err != nil || c.State.Status == StatusRemoving || c.State.Status == StatusDead
}

// startLocked starts container id; byPolicy counts it as a restart.
// Preconditions: the caller holds s.ops.lock(id).
func (s *Service) startLocked(ctx context.Context, id string, byPolicy bool) (err error) {
	c, err := s.index.get(id)
	if err != nil {
		return err
	}
	switch c.State.Status {
	case StatusRunning, StatusPaused:
		return errdefs.NotModified(fmt.Errorf("container %s is already running", c.ID))
	case StatusRemoving, StatusDead:
		return errdefs.Conflictf("container %s is marked for removal and cannot be started", c.ID)
	}
	ctx = log.With(ctx, "container", ShortID(c.ID))
	img, err := s.cfg.Images.Resolve(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("start: image of the container: %w", err)
	}
	bundle, rootfs := s.bundle(c.ID), s.rootfs(c.ID)
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			s.mutate(context.WithoutCancel(ctx), c.ID, func(c *Container) {
				c.State.SetFailed(startFailureCode(err), err, time.Now().UTC(), c.HasBeenStarted)
			})
		}
	}()
	if err := os.MkdirAll(rootfs, 0o711); err != nil {
		return err
	}
	undo = append(undo, func() {
		if !mountinfo.Busy(bundle) { // never delete through a mount left
			os.RemoveAll(bundle)
		}
	})
	// The rootfs (a snapshot and its overlay mount, 2-3 ms here) is made
	// on another goroutine while the network and the /etc files are; the
	// volumes and the spec need it.
	rootfsErr := make(chan error, 1)
	go func() { rootfsErr <- s.cfg.Images.PrepareRootfs(ctx, c.ID, c.Image, rootfs, c.HostConfig.AutoRemove) }()
	// Its undo waits for the mount to be made, then unmounts it.
	undo = append(undo, func() {
		if <-rootfsErr == nil {
			s.unmountRootfs(context.WithoutCancel(ctx), c.ID)
		}
	})
	rootfsReady := func() error {
		err := <-rootfsErr
		rootfsErr <- err // for the undo
		return err
	}
	att, err := s.attachNetwork(ctx, c)
	if err != nil {
		return err
	}
	if att != nil {
		undo = append(undo, func() { s.cfg.Network.Detach(context.WithoutCancel(ctx), c.ID) })
	}
	files, err := s.writeEtcFiles(c, att)
	if err != nil {
		return err
	}
	files.Rootfs = rootfs
	if att != nil {
		files.NetNSPath = att.NetNSPath
	}
	if files.PidNSPath, files.IPCNSPath, files.ShmPath, err = s.sharedNamespaces(c); err != nil {
		return err
	}
	if err := rootfsReady(); err != nil {
		return err
	}
	if c.HostConfig.IpcMode.IsShareable() {
		if err := s.mountShm(c); err != nil {
			return err
		}
	}
	if files.Mounts, err = s.mountVolumes(ctx, c, rootfs); err != nil {
		return err
	}
	undo = append(undo, func() { s.releaseVolumes(context.WithoutCancel(ctx), c) })
	spec, err := s.cfg.Spec(ctx, c, img, files)
	if err != nil {
		return err
	}
	if err := writeJSONFile(filepath.Join(bundle, "config.json"), spec); err != nil {
		return err
	}
	// The previous run's exit record goes before this run can write its
	// own (a fast exit would otherwise lose it).
	if err := os.Remove(filepath.Join(s.dir(c.ID), "exit.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tty := c.Config.Tty
	resp, err := s.cfg.Monitor.Create(ctx, monitor.CreateRequest{
		ID: c.ID, Bundle: bundle, Dir: s.dir(c.ID), TTY: tty,
		OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
		Log: logs.Config{Type: c.HostConfig.LogConfig.Type, Config: c.HostConfig.LogConfig.Config},
	})
	if err != nil {
		return err
	}
	undo = append(undo, func() { s.cfg.Monitor.Delete(context.WithoutCancel(ctx), c.ID, true) })
	s.connectPending(ctx, c.ID)
	if err := s.cfg.Monitor.Start(ctx, c.ID); err != nil {
		return err
	}
	c, err = s.mutate(ctx, c.ID, func(c *Container) {
		c.State.SetRunning(resp.Pid, time.Now().UTC())
		c.HasBeenStarted, c.ManualStop = true, false
		for i := range c.Mounts {
			c.Mounts[i].CopyData = false // done at the first start
		}
		if byPolicy {
			c.RestartCount++
		} else {
			c.RestartCount = 0
		}
	})
	if err != nil {
		return err
	}
	s.publish(c, events.ActionStart)
	s.startHealth(ctx, c, img) // health.go
	return nil
}

// scheduleRestart starts container id again after delay, by its restart
// policy, unless a user's stop, start or removal cancels it first.
func (s *Service) scheduleRestart(id string, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &pendingRestart{delay: delay}
	r.timer = time.AfterFunc(delay, func() {
		unlock := s.ops.lock(id)
		defer unlock()
		s.mu.Lock()
		cancelled := s.restarts[id] != r || r.timer == nil
		r.timer = nil
		s.mu.Unlock()
		if cancelled {
			return
		}
		ctx := log.With(s.lifetime, "container", ShortID(id))
		if err := s.startLocked(ctx, id, true); err != nil {
			log.From(ctx).Error("restarting by restart policy", "err", err)
		}
	})
	s.restarts[id] = r
}

// cancelRestart stops a pending restart; forget also drops the backoff.
func (s *Service) cancelRestart(id string, forget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.restarts[id]; r != nil {
		if r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
		if forget {
			delete(s.restarts, id)
		}
	}
}

// startFailureCode is the exit code Docker reports for a container that
// could not start: 127 when the command is not found, 126 when it cannot
// be executed, 128 otherwise.
func startFailureCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

// HandleExit records a container's exit the monitor announced: state,
// cleanup of the rootfs mount and the runtime's record, waiters, events,
// and --rm.
func (s *Service) HandleExit(ctx context.Context, st monitor.TaskState) {
	if st.Status != monitor.Exited {
		return
	}
	unlock := s.ops.lock(st.ID)
	c, err := s.index.get(st.ID)
	if err != nil || !c.Running() {
		unlock()
		return
	}
	at := st.ExitedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	// The monitor deletes the task (its runtime record and cgroup) while
	// this goroutine unmounts and detaches what the daemon made.
	deleted := make(chan error, 1)
	go func() { deleted <- s.cfg.Monitor.Delete(ctx, c.ID, false) }()
	if err := s.unmountRootfs(ctx, c.ID); err != nil {
		log.From(ctx).Warn("unmounting the exited container's rootfs", "container", c.ID, "err", err)
	} else {
		os.RemoveAll(s.bundle(c.ID)) // never through a live mount: it would delete the container's files
	}
	if s.cfg.Network != nil {
		s.cfg.Network.Detach(ctx, c.ID)
	}
	s.releaseVolumes(ctx, c)
	err = <-deleted
	taskDeleted := err == nil || errors.Is(err, errdefs.ErrNotFound)
	if !taskDeleted {
		log.From(ctx).Warn("deleting the exited container in the monitor", "container", c.ID, "err", err)
	}
	ran := at.Sub(c.State.StartedAt)
	s.stopHealth(c.ID) // health.go
	setExited := func(c *Container) { c.State.SetExited(st.ExitCode, at) }
	if c.HostConfig.AutoRemove {
		c, err = s.setTransient(c.ID, setExited)
	} else {
		c, err = s.mutate(ctx, c.ID, setExited)
	}
	if err != nil {
		log.From(ctx).Error("recording the exit", "container", c.ID, "err", err)
	}
	s.publishExit(c)
	s.mu.Lock()
	var prevDelay time.Duration
	if r := s.restarts[c.ID]; r != nil {
		prevDelay = r.delay
	}
	s.mu.Unlock()
	if d := shouldRestart(c.HostConfig.RestartPolicy, c.State.ExitCode, ran, c.ManualStop, c.RestartCount, prevDelay); d.restart {
		if next, err := s.mutate(ctx, c.ID, func(c *Container) { c.State.Status = StatusRestarting }); err == nil {
			c = next
			s.scheduleRestart(c.ID, d.delay)
		}
	}
	// Decided before the waiters hear of the exit: a restart's stop
	// returns then, and its start must find the container still there.
	s.mu.Lock()
	remove := c.HostConfig.AutoRemove && s.restartsByUser[c.ID] == 0
	s.mu.Unlock()
	unlock()
	s.notifyWaiters(c.ID, c.State.ExitCode)
	if remove {
		if err := s.Remove(ctx, c.ID, RemoveOptions{taskDeleted: taskDeleted}); err != nil {
			log.From(ctx).Error("--rm: removing the container", "container", c.ID, "err", err)
		}
	}
}

func (s *Service) publishExit(c *Container) {
	s.cfg.Events.Publish(eventbus.Message{
		Type: events.ContainerEventType, Action: events.ActionDie,
		Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, map[string]string{"exitCode": fmt.Sprint(c.State.ExitCode)})},
	})
}

// Kill sends a signal (a name like "SIGTERM" or "TERM", or a number).
func (s *Service) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	if !c.Running() {
		return errdefs.Conflictf("Cannot kill container: %s: container %s is not running", ref, c.ID)
	}
	if err := s.cfg.Monitor.Kill(ctx, c.ID, int(sig), false); err != nil {
		return err
	}
	if c.State.Status == StatusPaused {
		s.thawAfterKill(ctx, c.ID) // resources.go
	}
	s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: events.ActionKill,
		Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, map[string]string{"signal": fmt.Sprint(int(sig))})}})
	return nil
}

// Stop sends the stop signal, waits up to timeout (default 10 s, or the
// container's StopTimeout) for the exit, then kills.
func (s *Service) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	unlock := s.ops.lock(c.ID)
	if c, err = s.index.get(c.ID); err != nil {
		unlock()
		return err
	}
	if c.State.Status == StatusRestarting {
		// Waiting to be restarted by its policy: stopping cancels that.
		s.cancelRestart(c.ID, true)
		_, err = s.mutate(ctx, c.ID, func(c *Container) { c.State.Status, c.ManualStop = StatusExited, true })
		unlock()
		return err
	}
	if !c.Running() {
		unlock()
		return errdefs.NotModified(fmt.Errorf("container %s is not running", c.ID))
	}
	c, err = s.mutate(ctx, c.ID, func(c *Container) { c.ManualStop = true })
	unlock()
	if err != nil {
		return err
	}
	if signal == "" {
		signal = c.Config.StopSignal
	}
	if signal == "" {
		signal = "SIGTERM"
	}
	secs := 10
	if c.Config.StopTimeout != nil {
		secs = *c.Config.StopTimeout
	}
	if timeout != nil {
		secs = *timeout
	}
	exited := s.waitChan(c.ID)
	if secs != 0 {
		if err := s.Kill(ctx, c.ID, signal); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		var deadline <-chan time.Time
		if secs > 0 {
			deadline = time.After(time.Duration(secs) * time.Second)
		}
		select {
		case <-exited:
			s.publish(c, events.ActionStop)
			return nil
		case <-deadline:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := s.Kill(ctx, c.ID, "SIGKILL"); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return err
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return errdefs.Unavailable(fmt.Errorf("container %s did not exit 30s after SIGKILL", c.ID))
	case <-ctx.Done():
		return ctx.Err()
	}
	s.publish(c, events.ActionStop)
	return nil
}

// Restart stops container ref (as Stop; a stopped one is fine) and starts
// it again. As in Docker, an --rm container survives its restart: the
// stop's exit does not remove it.
func (s *Service) Restart(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.restartsByUser[c.ID]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.restartsByUser[c.ID]--; s.restartsByUser[c.ID] <= 0 {
			delete(s.restartsByUser, c.ID)
		}
		s.mu.Unlock()
	}()
	if err := s.Stop(ctx, c.ID, timeout, signal); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	return s.Start(ctx, c.ID)
}

// waitChan returns a channel that receives the exit code at the
// container's next exit (at once if it is not running).
func (s *Service) waitChan(id string) <-chan int {
	ch := make(chan int, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.index.get(id)
	if err != nil || !c.Running() {
		if err == nil {
			ch <- c.State.ExitCode
		}
		close(ch)
		return ch
	}
	s.waiters[id] = append(s.waiters[id], ch)
	return ch
}

func (s *Service) notifyWaiters(key string, code int) {
	s.mu.Lock()
	ws := s.waiters[key]
	delete(s.waiters, key)
	s.mu.Unlock()
	for _, ch := range ws {
		ch <- code
		close(ch)
	}
}

// WaitCondition is the condition of POST /containers/{id}/wait.
type WaitCondition string

// The wait conditions Docker knows.
const (
	WaitNotRunning WaitCondition = "not-running"
	WaitNextExit   WaitCondition = "next-exit"
	WaitRemoved    WaitCondition = "removed"
)

// WaitResult is what a wait ends with.
type WaitResult struct {
	ExitCode int
	Error    string
}

// Wait blocks until the condition holds and returns the exit code.
// Callers that must not miss an exit (docker run) call Wait before Start:
// the registration happens before Wait returns its channel.
func (s *Service) Wait(ctx context.Context, ref string, cond WaitCondition) (<-chan WaitResult, error) {
	switch cond {
	case "", WaitNotRunning:
		cond = WaitNotRunning
	case WaitNextExit, WaitRemoved:
	default:
		return nil, errdefs.Invalidf("invalid condition: %q", cond)
	}
	c, err := s.index.get(ref)
	if err != nil {
		return nil, err
	}
	out := make(chan WaitResult, 1)
	if cond == WaitNotRunning && !c.Running() {
		out <- WaitResult{ExitCode: c.State.ExitCode}
		return out, nil
	}
	ch := make(chan int, 1)
	key := c.ID
	if cond == WaitRemoved {
		key = "removed:" + c.ID
	}
	s.mu.Lock()
	s.waiters[key] = append(s.waiters[key], ch)
	s.mu.Unlock()
	go func() {
		select {
		case code := <-ch:
			out <- WaitResult{ExitCode: code}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// RemoveOptions are `docker rm` flags.
type RemoveOptions struct {
	Force   bool
	Volumes bool
	// taskDeleted: the monitor has no task for it any more (HandleExit
	// deleted it), so the removal need not ask.
	taskDeleted bool
}

// Remove deletes a container: its process (with Force), root filesystem,
// logs, directories and record.
func (s *Service) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status == StatusRestarting {
		if !opts.Force {
			return errdefs.Conflictf("cannot remove container %q: container is restarting: stop the container before removing or force remove", "/"+c.Name)
		}
		s.cancelRestart(c.ID, true)
	}
	if c.Running() {
		if !opts.Force {
			return errdefs.Conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
		}
		if err := s.Kill(ctx, c.ID, "SIGKILL"); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		select {
		case <-s.waitChan(c.ID):
		case <-time.After(30 * time.Second):
			return errdefs.Unavailable(fmt.Errorf("container %s did not exit 30s after SIGKILL", c.ID))
		}
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	if _, err := s.index.get(c.ID); err != nil {
		return nil // removed meanwhile (--rm)
	}
	setRemoving := func(c *Container) { c.State.Status = StatusRemoving }
	if c.HostConfig.AutoRemove && c.HasBeenStarted {
		// Its record says running (HandleExit did not store the exit):
		// recovery removes it. See setTransient.
		c, err = s.setTransient(c.ID, setRemoving)
	} else {
		c, err = s.mutate(ctx, c.ID, setRemoving)
	}
	if err != nil {
		return err
	}
	if !opts.taskDeleted {
		s.cfg.Monitor.Delete(ctx, c.ID, true)
	}
	if s.cfg.Network != nil {
		if err := s.cfg.Network.Detach(ctx, c.ID); err != nil {
			return s.markDead(ctx, c, err)
		}
	}
	if err := s.unmountRootfs(ctx, c.ID); err != nil {
		return s.markDead(ctx, c, err)
	}
	if err := s.cfg.Store.Delete(ctx, c.ID); err != nil {
		return s.markDead(ctx, c, err)
	}
	s.index.remove(c)
	s.forgetExecs(c.ID)
	if opts.Volumes || c.HostConfig.AutoRemove {
		s.removeAnonymousVolumes(ctx, c)
	}
	s.publish(c, events.ActionDestroy)
	// Only its disk is left, which nothing reaches any more: deleted
	// after the answer (reclaim.go).
	s.reclaim(c.ID)
	s.notifyWaiters("removed:"+c.ID, c.State.ExitCode)
	return nil
}

// markDead records a removal that failed half way: Docker shows such a
// container as dead, and a second rm retries.
// Preconditions: the caller holds s.ops.lock(c.ID).
func (s *Service) markDead(ctx context.Context, c *Container, err error) error {
	s.mutate(ctx, c.ID, func(c *Container) { c.State.Status, c.State.Error = StatusDead, err.Error() })
	return fmt.Errorf("removal of container %s failed: %w", c.ID, err)
}

// List returns the containers `docker ps` shows for opts.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	sel, err := selectContainers(s.index.all(), opts, s.index.get, func(c *Container, ref string) bool {
		img, err := s.cfg.Images.Resolve(ctx, ref)
		return err == nil && img.ID == c.Image
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]container.Summary, len(sel))
	for i, c := range sel {
		out[i] = c.Summary(now)
		s.addNetworkSummary(c, &out[i])
	}
	return out, nil
}

// Inspect returns GET /containers/{id}/json.
func (s *Service) Inspect(ctx context.Context, ref string) (container.InspectResponse, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	return container.InspectResponse{
		ID: c.ID, Created: apiTime(c.Created), Path: c.Path, Args: c.Args, State: c.State.API(),
		Image: c.Image, Name: "/" + c.Name, RestartCount: c.RestartCount, Driver: "overlay", Platform: "linux",
		LogPath:    logs.Path(s.dir(c.ID), c.ID, logs.Config{Type: c.HostConfig.LogConfig.Type, Config: c.HostConfig.LogConfig.Config}),
		HostConfig: c.HostConfig, Config: c.Config, Mounts: c.mountPoints(),
		NetworkSettings: s.networkSettings(c),
	}, nil
}

// LogsOptions are `docker logs` flags.
type LogsOptions = logs.ReadOptions

// Logs hands the container's log entries to emit. With Follow it returns
// once the container has stopped and everything was read, or ctx ends.
func (s *Service) Logs(ctx context.Context, ref string, opts LogsOptions, emit func(logs.Entry) error) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	if opts.Follow {
		exited, done := s.waitChan(c.ID), make(chan struct{})
		go func() {
			select {
			case <-exited:
			case <-ctx.Done():
			}
			close(done)
		}()
		opts.Done = done
	}
	cfg := logs.Config{Type: c.HostConfig.LogConfig.Type, Config: c.HostConfig.LogConfig.Config}
	return logs.Read(ctx, s.dir(c.ID), c.ID, cfg, opts, emit)
}

// Resize sets the terminal size of a running TTY container.
func (s *Service) Resize(ctx context.Context, ref string, height, width uint16) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	if !c.Running() {
		return errdefs.Conflictf("container %s is not running", c.ID)
	}
	return s.cfg.Monitor.Resize(ctx, c.ID, height, width)
}

// pendingAttach is an attach made before its container started.
type pendingAttach struct {
	stdin, stdout, stderr bool
	ready                 chan attachResult
}

type attachResult struct {
	conn net.Conn
	rd   interface{ Read([]byte) (int, error) }
	err  error
}

// Attach connects to the container's stdio. For a container that has not
// started, the connection is made by Start, before the process runs, so no
// output is missed; for one that has exited, it returns at once with
// nothing to read.
func (s *Service) Attach(ctx context.Context, ref string, stdin, stdout, stderr bool) (net.Conn, interface{ Read([]byte) (int, error) }, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return nil, nil, err
	}
	if c.Running() {
		conn, rd, err := s.cfg.Monitor.Attach(ctx, c.ID, stdin, stdout, stderr)
		if err != nil {
			return nil, nil, err
		}
		return conn, rd, nil
	}
	if c.State.Status != StatusCreated && c.State.Status != StatusExited {
		return nil, nil, errdefs.Conflictf("container %s is %s", c.ID, c.State.Status)
	}
	p := &pendingAttach{stdin: stdin, stdout: stdout, stderr: stderr, ready: make(chan attachResult, 1)}
	s.mu.Lock()
	s.pending[c.ID] = append(s.pending[c.ID], p)
	s.mu.Unlock()
	select {
	case r := <-p.ready:
		return r.conn, r.rd, r.err
	case <-ctx.Done():
		s.mu.Lock()
		list := s.pending[c.ID]
		for i, q := range list {
			if q == p {
				s.pending[c.ID] = append(list[:i], list[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		return nil, nil, ctx.Err()
	}
}

// connectPending attaches the waiting clients to a created task.
func (s *Service) connectPending(ctx context.Context, id string) {
	s.mu.Lock()
	list := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	for _, p := range list {
		conn, rd, err := s.cfg.Monitor.Attach(ctx, id, p.stdin, p.stdout, p.stderr)
		p.ready <- attachResult{conn: conn, rd: rd, err: err}
	}
}

// Reconcile matches the records with what the monitor runs, after a
// daemon start: a container recorded as running whose task is gone or has
// exited gets its exit (from the task, or the exit record the monitor
// wrote); a task the daemon has no record of is deleted.
func (s *Service) Reconcile(ctx context.Context) error {
	tasks, err := s.cfg.Monitor.List(ctx)
	if err != nil {
		return err
	}
	byID := map[string]monitor.TaskState{}
	for _, t := range tasks {
		byID[t.ID] = t
	}
	for _, c := range s.index.all() {
		t, ok := byID[c.ID]
		delete(byID, c.ID)
		switch {
		case ok && t.Status == monitor.Exited:
			if !c.Running() {
				// Started by the monitor, but the daemon died before it
				// recorded that: the run happened, so its exit counts.
				unlock := s.ops.lock(c.ID)
				s.mutate(ctx, c.ID, func(c *Container) {
					c.State.SetRunning(t.Pid, t.ExitedAt)
					c.HasBeenStarted = true
				})
				unlock()
			}
			s.HandleExit(ctx, t)
		case ok && t.Status == monitor.Created:
			// A start the daemon's death interrupted before the process
			// ran: undo it; the container stays as it was recorded.
			unlock := s.ops.lock(c.ID)
			s.cfg.Monitor.Delete(ctx, c.ID, true)
			if !c.Running() {
				if err := s.unmountRootfs(ctx, c.ID); err != nil {
					log.From(ctx).Warn("unmounting an interrupted start's rootfs", "container", c.ID, "err", err)
				}
			}
			unlock()
		case ok:
			s.adoptVolumes(c)
			if !c.Running() {
				unlock := s.ops.lock(c.ID)
				s.mutate(ctx, c.ID, func(c *Container) { c.State.SetRunning(t.Pid, c.State.StartedAt) })
				unlock()
			}
		case c.Running():
			st := monitor.TaskState{ID: c.ID, Status: monitor.Exited, ExitCode: 255}
			if rec, err := monitor.ReadExitRecord(s.dir(c.ID)); err == nil {
				st.ExitCode, st.ExitedAt = rec.ExitCode, rec.ExitedAt
			}
			s.HandleExit(ctx, st)
		case c.State.Status == StatusRemoving || c.State.Status == StatusDead:
			if err := s.Remove(ctx, c.ID, RemoveOptions{Force: true}); err != nil {
				log.From(ctx).Warn("finishing an interrupted removal", "container", c.ID, "err", err)
			}
		}
	}
	for id := range byID {
		log.From(ctx).Warn("the monitor runs a container the daemon has no record of; deleting it", "container", id)
		s.cfg.Monitor.Delete(ctx, id, true)
	}
	s.cleanOrphans(ctx)
	s.sweepNetwork(ctx)
	return nil
}

// sweepNetwork detaches the containers that exited while the daemon was
// away. Requests are served meanwhile: each check and detach holds the
// container's lock, so a start in progress, which attaches before its
// process runs, keeps its namespace.
func (s *Service) sweepNetwork(ctx context.Context) {
	if s.cfg.Network == nil {
		return
	}
	ids, err := s.cfg.Network.Attached()
	if err != nil {
		log.From(ctx).Warn("sweeping endpoints", "err", err)
		return
	}
	for _, id := range ids {
		unlock := s.ops.lock(id)
		if c, err := s.index.get(id); err != nil || c.ID != id || !c.Running() {
			log.From(ctx).Info("detaching a container that is no longer running", "container", id)
			if err := s.cfg.Network.Detach(ctx, id); err != nil {
				log.From(ctx).Warn("detaching a container that is no longer running", "container", id, "err", err)
			}
		}
		unlock()
	}
}

// cleanOrphans removes what a crash can leave under the exec root: the
// mounted rootfs and bundle of a container that is not running, and the
// directory of a container that has no record at all.
func (s *Service) cleanOrphans(ctx context.Context) {
	ents, err := os.ReadDir(filepath.Join(s.cfg.ExecRoot, "containers"))
	if err != nil {
		return
	}
	for _, e := range ents {
		s.cleanOrphan(ctx, e.Name())
	}
}

// cleanOrphan removes the mounted rootfs and bundle of container id unless
// it runs. It holds the container's lock: the daemon may already be
// starting it (requests are served while it reconciles), and a start's
// bundle must not vanish under it.
func (s *Service) cleanOrphan(ctx context.Context, id string) {
	unlock := s.ops.lock(id)
	defer unlock()
	c, err := s.index.get(id)
	if err == nil && (c.ID != id || c.Running() || c.State.Status == StatusRestarting) {
		return
	}
	if err := s.unmountRootfs(ctx, id); err != nil {
		log.From(ctx).Warn("unmounting a leftover rootfs", "container", id, "err", err)
		return
	}
	os.RemoveAll(s.bundle(id))
}

// WatchExits applies the monitor's exit announcements until ctx ends,
// reconnecting (and reconciling) when the stream breaks.
func (s *Service) WatchExits(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := s.cfg.Monitor.Events(ctx)
		if err == nil {
			if err := s.Reconcile(ctx); err != nil {
				log.From(ctx).Warn("reconciling with the monitor", "err", err)
			}
			for st := range ch {
				if st.Status == monitor.Exited {
					s.HandleExit(ctx, st)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Service) publish(c *Container, action events.Action) {
	s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, nil)}})
}

// attributes are an event's actor attributes: the container's labels,
// name and image, as Docker sends them.
func (s *Service) attributes(c *Container, extra map[string]string) map[string]string {
	a := map[string]string{"name": c.Name, "image": c.ImageRef}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			a[k] = v
		}
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// keyedMutex serializes operations per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// ParseSignal reads "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGKILL, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalidf("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	for sig, n := range signalNames {
		if sig == name {
			return n, nil
		}
	}
	return 0, errdefs.Invalidf("invalid signal: %s", s)
}

var signalNames = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
	"STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM,
	"TRAP": syscall.SIGTRAP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM,
	"WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}
