package container

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/log"
)

// HealthProber runs a healthcheck command in a running container: a
// process joined to its namespaces, cgroup and security settings, without
// a terminal (an exec). It returns the exit code and the combined output.
// ctx carries the check's timeout: the process is killed when it ends.
type HealthProber interface {
	Probe(ctx context.Context, c *Container, argv []string) (exitCode int, output string, err error)
}

// Docker's healthcheck defaults.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	maxHealthLog               = 5
	maxHealthOutput            = 4096
)

// healthMonitors are the running healthcheck loops, one per container.
type healthMonitors struct {
	mu     sync.Mutex                    // guards cancel
	cancel map[string]context.CancelFunc // container ID → stops its loop
}

// HealthConfig is the healthcheck a container runs: its own over its
// image's, field by field (Docker's merge); nil when there is none or it
// is "NONE".
func HealthConfig(ctr, img *container.HealthConfig) *container.HealthConfig {
	if ctr == nil && img == nil {
		return nil
	}
	var out container.HealthConfig
	if img != nil {
		out = *img
	}
	if ctr != nil {
		if len(ctr.Test) > 0 {
			out.Test = ctr.Test
		}
		if ctr.Interval != 0 {
			out.Interval = ctr.Interval
		}
		if ctr.Timeout != 0 {
			out.Timeout = ctr.Timeout
		}
		if ctr.StartPeriod != 0 {
			out.StartPeriod = ctr.StartPeriod
		}
		if ctr.StartInterval != 0 {
			out.StartInterval = ctr.StartInterval
		}
		if ctr.Retries != 0 {
			out.Retries = ctr.Retries
		}
	}
	if len(out.Test) == 0 || out.Test[0] == "NONE" {
		return nil
	}
	return &out
}

// healthArgv is the command a healthcheck test runs.
func healthArgv(test []string, shell []string) ([]string, error) {
	switch test[0] {
	case "CMD":
		if len(test) < 2 {
			return nil, errdefs.Invalidf("healthcheck CMD needs a command")
		}
		return test[1:], nil
	case "CMD-SHELL":
		if len(test) != 2 {
			return nil, errdefs.Invalidf("healthcheck CMD-SHELL needs one command string")
		}
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), test[1]), nil
	}
	return nil, errdefs.Invalidf("unknown healthcheck type %q (want CMD, CMD-SHELL or NONE)", test[0])
}

// ValidateHealthConfig checks a healthcheck as Docker's create does.
func ValidateHealthConfig(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	if len(h.Test) > 0 && h.Test[0] != "NONE" {
		if _, err := healthArgv(h.Test, nil); err != nil {
			return err
		}
	}
	const least = time.Millisecond
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if f.d < 0 || (f.d != 0 && f.d < least) {
			return errdefs.Invalidf("Healthcheck.%s in Config must be 0 or at least %v", f.name, least)
		}
	}
	if h.Retries < 0 {
		return errdefs.Invalidf("Healthcheck.Retries in Config must be at least 0")
	}
	return nil
}

// healthResult is one check's outcome.
type healthResult struct {
	start, end time.Time
	exitCode   int
	output     string
}

// nextHealth applies one result to h (Docker's rules): a success makes it
// healthy; a failure during the start period changes nothing while it is
// still starting; otherwise failures count, and retries in a row make it
// unhealthy. The log keeps the last five results. It reports whether the
// status changed.
func nextHealth(h *container.Health, r healthResult, cfg *container.HealthConfig, startedAt time.Time) bool {
	before := h.Status
	h.Log = append(h.Log, &container.HealthcheckResult{Start: r.start, End: r.end, ExitCode: r.exitCode, Output: r.output})
	if len(h.Log) > maxHealthLog {
		h.Log = append([]*container.HealthcheckResult(nil), h.Log[len(h.Log)-maxHealthLog:]...)
	}
	retries := cfg.Retries
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	switch {
	case r.exitCode == 0:
		h.Status, h.FailingStreak = container.Healthy, 0
	case h.Status == container.Starting && r.start.Sub(startedAt) < cfg.StartPeriod:
		// not counted
	default:
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	return h.Status != before
}

// healthDelay is the wait before the next check: the start interval while
// starting within the start period, else the interval.
func healthDelay(h *container.Health, cfg *container.HealthConfig, startedAt, now time.Time) time.Duration {
	interval := cfg.Interval
	if interval == 0 {
		interval = defaultHealthInterval
	}
	if h.Status == container.Starting && now.Sub(startedAt) < cfg.StartPeriod {
		si := cfg.StartInterval
		if si == 0 {
			si = defaultHealthStartInterval
		}
		return si
	}
	return interval
}

// startHealth starts container c's healthcheck loop, if it has one and a
// prober is configured, and records it as starting.
// Preconditions: the caller holds s.ops.lock(c.ID); c is running.
func (s *Service) startHealth(ctx context.Context, c *Container, img Image) {
	cfg := HealthConfig(c.Config.Healthcheck, img.Config.Healthcheck)
	if cfg == nil || s.cfg.Health == nil {
		return
	}
	argv, err := healthArgv(cfg.Test, c.Config.Shell)
	if err != nil {
		log.From(ctx).Warn("not running the healthcheck", "container", c.ID, "err", err)
		return
	}
	c, err = s.mutate(ctx, c.ID, func(c *Container) {
		c.State.Health = &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	})
	if err != nil {
		return
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.health.mu.Lock()
	if s.health.cancel == nil {
		s.health.cancel = map[string]context.CancelFunc{}
	}
	if old := s.health.cancel[c.ID]; old != nil {
		old()
	}
	s.health.cancel[c.ID] = cancel
	s.health.mu.Unlock()
	go s.healthLoop(lctx, c.ID, c.State.StartedAt, cfg, argv)
}

// stopHealth ends container id's healthcheck loop.
func (s *Service) stopHealth(id string) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if cancel := s.health.cancel[id]; cancel != nil {
		cancel()
		delete(s.health.cancel, id)
	}
}

func (s *Service) healthLoop(ctx context.Context, id string, startedAt time.Time, cfg *container.HealthConfig, argv []string) {
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultHealthTimeout
	}
	h := &container.Health{Status: container.Starting}
	var lastErr string // the last probe that could not run, logged once
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(healthDelay(h, cfg, startedAt, time.Now())):
		}
		c, err := s.index.get(id)
		if err != nil || c.State.Status != StatusRunning || !c.State.StartedAt.Equal(startedAt) {
			if err != nil || !c.Running() || !c.State.StartedAt.Equal(startedAt) {
				return
			}
			continue // paused: no checks
		}
		r := healthResult{start: time.Now()}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		r.exitCode, r.output, err = s.cfg.Health.Probe(pctx, c, argv)
		timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
		cancel()
		r.end = time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case timedOut:
			r.exitCode, r.output = -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		case err != nil:
			r.exitCode, r.output = -1, err.Error()
			if err.Error() != lastErr {
				log.From(ctx).Warn("the healthcheck could not run", "container", id, "err", err)
			}
		}
		if err == nil {
			lastErr = ""
		} else {
			lastErr = err.Error()
		}
		if len(r.output) > maxHealthOutput {
			r.output = r.output[:maxHealthOutput]
		}
		unlock := s.ops.lock(id)
		var changed bool
		c, err = s.mutate(ctx, id, func(c *Container) {
			if !c.Running() || !c.State.StartedAt.Equal(startedAt) || c.State.Health == nil {
				return
			}
			next := *c.State.Health
			next.Log = append([]*container.HealthcheckResult(nil), next.Log...)
			changed = nextHealth(&next, r, cfg, startedAt)
			c.State.Health = &next
			h = &next
		})
		unlock()
		if errors.Is(err, errdefs.ErrNotFound) {
			return // removed meanwhile
		}
		if err != nil {
			log.From(ctx).Warn("recording a healthcheck", "container", id, "err", err)
			continue
		}
		if changed {
			status := string(h.Status)
			s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: events.Action(string(events.ActionHealthStatus) + ": " + status),
				Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, nil)}})
		}
	}
}

// healthStatus is the container's health as `ps --filter health=` names
// it: none, starting, healthy or unhealthy.
func healthStatus(c *Container) string {
	if c.State.Health == nil {
		return string(container.NoHealthcheck)
	}
	return string(c.State.Health.Status)
}
