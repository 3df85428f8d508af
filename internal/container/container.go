// Package container owns berth's containers: their records, names and life
// cycle — create, start, stop, kill, wait, remove — built on the image
// service for root filesystems, the spec generator for OCI specs, and the
// monitor, which runs them.
package container

import (
	"fmt"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Status is where a container is in its life, as Docker names it.
type Status string

// The statuses, as `docker ps` and inspect show them.
const (
	StatusCreated    Status = "created"
	StatusRunning    Status = "running"
	StatusPaused     Status = "paused"
	StatusRestarting Status = "restarting"
	StatusRemoving   Status = "removing"
	StatusExited     Status = "exited"
	StatusDead       Status = "dead"
)

// State is a container's run state.
type State struct {
	Status     Status
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	// Health is the healthcheck's state; nil without a healthcheck.
	Health *container.Health `json:",omitempty"`
}

// Container is a container's record, as the metadata store keeps it.
type Container struct {
	ID         string
	Name       string // without Docker's leading slash
	Created    time.Time
	Path       string   // the process's executable, as given
	Args       []string // its arguments
	Config     *container.Config
	HostConfig *container.HostConfig
	Image      string // the image's ID (sha256:...)
	ImageRef   string // the image as the user named it
	// Endpoints are the networks it joins beyond its network mode's, with
	// aliases and addresses (NetworkingConfig, `network connect`).
	Endpoints map[string]*network.EndpointSettings `json:",omitempty"`
	State     State
	// RestartCount counts restarts by the restart policy since the last
	// start by a user.
	RestartCount int
	// HasBeenStarted tells whether the container ever ran, for `docker
	// start` semantics and for restart policies on daemon start.
	HasBeenStarted bool
	// ManualStop tells that a user stopped it, so `unless-stopped` does
	// not bring it back when the daemon starts.
	ManualStop bool
	// Mounts are its volumes and binds, resolved at create.
	Mounts []Mount `json:",omitempty"`
}

// Running reports whether the container's process is alive (running or
// paused).
func (c *Container) Running() bool {
	return c.State.Status == StatusRunning || c.State.Status == StatusPaused
}

// SetRunning records a start.
func (s *State) SetRunning(pid int, at time.Time) {
	s.Status, s.Pid, s.ExitCode, s.Error, s.OOMKilled, s.Health = StatusRunning, pid, 0, "", false, nil
	s.StartedAt, s.FinishedAt = at, time.Time{}
}

// SetExited records an exit.
func (s *State) SetExited(code int, at time.Time) {
	s.Status, s.Pid, s.ExitCode, s.FinishedAt = StatusExited, 0, code, at
}

// SetFailed records a start that failed: Docker shows such a container as
// created (if it never ran) with the error, and exit code 128 or more.
func (s *State) SetFailed(code int, err error, at time.Time, everRan bool) {
	s.Pid, s.ExitCode, s.Error, s.FinishedAt = 0, code, err.Error(), at
	s.Status = StatusCreated
	if everRan {
		s.Status = StatusExited
	}
}

// Describe is the STATUS column of `docker ps`: "Up 5 minutes",
// "Exited (0) 2 seconds ago", "Up 3 hours (Paused)", "Created".
func (s State) Describe(now time.Time) string {
	switch s.Status {
	case StatusRunning:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + s.healthSuffix()
	case StatusPaused:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case StatusRemoving:
		return "Removal In Progress"
	case StatusDead:
		return "Dead"
	case StatusExited:
		if s.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", s.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	}
	return "Created"
}

// API is the state as the Engine API shows it in inspect.
func (s State) API() *container.State {
	return &container.State{
		Status:     container.ContainerState(s.Status),
		Running:    s.Status == StatusRunning || s.Status == StatusPaused,
		Paused:     s.Status == StatusPaused,
		Restarting: s.Status == StatusRestarting,
		OOMKilled:  s.OOMKilled,
		Dead:       s.Status == StatusDead,
		Pid:        s.Pid,
		ExitCode:   s.ExitCode,
		Error:      s.Error,
		StartedAt:  apiTime(s.StartedAt),
		FinishedAt: apiTime(s.FinishedAt),
		Health:     s.Health,
	}
}

// healthSuffix is what `docker ps` appends to "Up ...": " (healthy)",
// " (unhealthy)", " (health: starting)".
func (s State) healthSuffix() string {
	if s.Health == nil {
		return ""
	}
	if s.Health.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(s.Health.Status) + ")"
}

// apiTime formats a time as Docker does in inspect; the zero time is
// "0001-01-01T00:00:00Z".
func apiTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
