package container

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
)

func TestHealthConfig(t *testing.T) {
	img := &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 2}
	tests := []struct {
		name     string
		ctr, img *container.HealthConfig
		want     *container.HealthConfig
	}{
		{"none", nil, nil, nil},
		{"image only", nil, img, img},
		{"container overrides some fields", &container.HealthConfig{Timeout: 3 * time.Second}, img,
			&container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 3 * time.Second, Retries: 2}},
		{"NONE disables", &container.HealthConfig{Test: []string{"NONE"}}, img, nil},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, HealthConfig(tt.ctr, tt.img)); d != "" {
			t.Errorf("%s: (-want +got)\n%s", tt.name, d)
		}
	}
}

func TestHealthArgv(t *testing.T) {
	for _, tt := range []struct {
		test, shell, want []string
		err               bool
	}{
		{test: []string{"CMD", "curl", "-f", "x"}, want: []string{"curl", "-f", "x"}},
		{test: []string{"CMD-SHELL", "exit 1"}, want: []string{"/bin/sh", "-c", "exit 1"}},
		{test: []string{"CMD-SHELL", "exit 1"}, shell: []string{"/bin/bash", "-ec"}, want: []string{"/bin/bash", "-ec", "exit 1"}},
		{test: []string{"CMD"}, err: true},
		{test: []string{"BOGUS", "x"}, err: true},
	} {
		got, err := healthArgv(tt.test, tt.shell)
		if (err != nil) != tt.err || !cmp.Equal(got, tt.want) {
			t.Errorf("healthArgv(%q) = %q, %v", tt.test, got, err)
		}
	}
	if err := ValidateHealthConfig(&container.HealthConfig{Test: []string{"CMD", "x"}, Interval: time.Microsecond}); err == nil {
		t.Error("an interval under 1ms: want an error")
	}
	if err := ValidateHealthConfig(&container.HealthConfig{Test: []string{"NONE"}}); err != nil {
		t.Error(err)
	}
}

// A sequence of results walks the states as Docker's: failures in the
// start period do not count, a success makes it healthy, retries failures
// in a row make it unhealthy, and the log keeps five.
func TestNextHealth(t *testing.T) {
	started := time.Unix(1000, 0)
	cfg := &container.HealthConfig{Test: []string{"CMD", "x"}, StartPeriod: 10 * time.Second, Retries: 2}
	h := &container.Health{Status: container.Starting}
	steps := []struct {
		at      time.Duration // after start
		code    int
		status  container.HealthStatus
		streak  int
		changed bool
	}{
		{1 * time.Second, 1, container.Starting, 0, false}, // in the start period: not counted
		{2 * time.Second, 0, container.Healthy, 0, true},
		{20 * time.Second, 1, container.Healthy, 1, false},
		{30 * time.Second, 1, container.Unhealthy, 2, true},
		{40 * time.Second, -1, container.Unhealthy, 3, false},
		{50 * time.Second, 0, container.Healthy, 0, true},
	}
	for i, st := range steps {
		changed := nextHealth(h, healthResult{start: started.Add(st.at), end: started.Add(st.at), exitCode: st.code}, cfg, started)
		if h.Status != st.status || h.FailingStreak != st.streak || changed != st.changed {
			t.Fatalf("step %d: status %s streak %d changed %v; want %s %d %v", i, h.Status, h.FailingStreak, changed, st.status, st.streak, st.changed)
		}
	}
	if len(h.Log) != maxHealthLog || h.Log[len(h.Log)-1].ExitCode != 0 {
		t.Fatalf("log: %d entries", len(h.Log))
	}
	// Past the start period, a failure while starting counts.
	h = &container.Health{Status: container.Starting}
	nextHealth(h, healthResult{start: started.Add(11 * time.Second), exitCode: 1}, cfg, started)
	if h.FailingStreak != 1 {
		t.Fatalf("failure after the start period: streak %d", h.FailingStreak)
	}
}

func TestHealthDelay(t *testing.T) {
	started := time.Unix(1000, 0)
	cfg := &container.HealthConfig{StartPeriod: 10 * time.Second, StartInterval: time.Second, Interval: 7 * time.Second}
	starting := &container.Health{Status: container.Starting}
	if d := healthDelay(starting, cfg, started, started.Add(time.Second)); d != time.Second {
		t.Errorf("in the start period: %v", d)
	}
	if d := healthDelay(starting, cfg, started, started.Add(11*time.Second)); d != 7*time.Second {
		t.Errorf("after the start period: %v", d)
	}
	if d := healthDelay(&container.Health{Status: container.Healthy}, &container.HealthConfig{}, started, started); d != defaultHealthInterval {
		t.Errorf("default: %v", d)
	}
}

func TestDescribeHealth(t *testing.T) {
	now := time.Now()
	s := State{Status: StatusRunning, StartedAt: now.Add(-time.Minute), Health: &container.Health{Status: container.Starting}}
	if got := s.Describe(now); got != "Up About a minute (health: starting)" {
		t.Errorf("Describe = %q", got)
	}
	s.Health.Status = container.Unhealthy
	if got := s.Describe(now); got != "Up About a minute (unhealthy)" {
		t.Errorf("Describe = %q", got)
	}
}
