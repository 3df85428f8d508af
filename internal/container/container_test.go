package container

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/internal/errdefs"
)

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		s    State
		want string
	}{
		{State{Status: StatusCreated}, "Created"},
		{State{Status: StatusRunning, StartedAt: now.Add(-5 * time.Minute)}, "Up 5 minutes"},
		{State{Status: StatusPaused, StartedAt: now.Add(-3 * time.Hour)}, "Up 3 hours (Paused)"},
		{State{Status: StatusExited, ExitCode: 137, FinishedAt: now.Add(-2 * time.Second)}, "Exited (137) 2 seconds ago"},
		{State{Status: StatusRestarting, ExitCode: 1, FinishedAt: now.Add(-time.Second)}, "Restarting (1) 1 second ago"},
	}
	for _, tt := range tests {
		if got := tt.s.Describe(now); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestStateTransitions(t *testing.T) {
	var s State
	t0 := time.Unix(100, 0)
	s.SetRunning(42, t0)
	if api := s.API(); !api.Running || api.Pid != 42 || api.Status != "running" {
		t.Fatalf("running: %+v", api)
	}
	s.SetExited(3, t0.Add(time.Second))
	if api := s.API(); api.Running || api.Pid != 0 || api.ExitCode != 3 || api.Status != "exited" {
		t.Fatalf("exited: %+v", api)
	}
	s.SetFailed(127, errors.New(`exec: "nope": executable file not found in $PATH`), t0, false)
	if api := s.API(); api.Status != "created" || api.ExitCode != 127 || !strings.Contains(api.Error, "nope") {
		t.Fatalf("failed: %+v", api)
	}
	if got := (State{}).API().StartedAt; got != "0001-01-01T00:00:00Z" {
		t.Fatalf("zero time = %q, want Docker's", got)
	}
}

func TestIndexLookup(t *testing.T) {
	x := newIndex()
	a := &Container{ID: "abc111" + strings.Repeat("0", 58), Name: "web", Created: time.Unix(1, 0)}
	b := &Container{ID: "abc222" + strings.Repeat("0", 58), Name: "db", Created: time.Unix(2, 0)}
	x.add(a)
	x.add(b)
	for ref, want := range map[string]*Container{a.ID: a, "web": a, "/db": b, "abc1": a, "abc2": b} {
		if got, err := x.get(ref); err != nil || got != want {
			t.Errorf("get(%q) = %v, %v", ref, got, err)
		}
	}
	if _, err := x.get("abc"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "multiple IDs") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := x.get("nope"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such container: nope" {
		t.Errorf("missing: %v", err)
	}
	if err := x.reserve("web", "other"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `"/web" is already in use`) {
		t.Errorf("name conflict: %v", err)
	}
	if all := x.all(); len(all) != 2 || all[0] != b {
		t.Errorf("all must be newest first: %v", all)
	}
	x.remove(a)
	if x.taken("web") {
		t.Error("name must be free after remove")
	}
}
