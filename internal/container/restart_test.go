package container

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestShouldRestart(t *testing.T) {
	always := container.RestartPolicy{Name: container.RestartPolicyAlways}
	onFailure3 := container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	tests := []struct {
		name       string
		policy     container.RestartPolicy
		code       int
		ran        time.Duration
		manual     bool
		count      int
		prev, want time.Duration // want 0: no restart
	}{
		{"no policy", container.RestartPolicy{}, 1, 0, false, 0, 0, 0},
		{"always after success", always, 0, time.Second, false, 0, 0, minRestartDelay},
		{"always, but stopped by a user", always, 137, time.Second, true, 0, 0, 0},
		{"unless-stopped", container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, 0, 0, false, 5, 0, minRestartDelay},
		{"on-failure after success", onFailure3, 0, 0, false, 0, 0, 0},
		{"on-failure after failure", onFailure3, 2, 0, false, 2, 0, minRestartDelay},
		{"on-failure, retries used up", onFailure3, 2, 0, false, 3, 0, 0},
		{"backoff doubles", always, 1, time.Second, false, 1, 400 * time.Millisecond, 800 * time.Millisecond},
		{"backoff capped", always, 1, time.Second, false, 9, 50 * time.Second, maxRestartDelay},
		{"a long run resets it", always, 1, time.Minute, false, 9, 50 * time.Second, minRestartDelay},
	}
	for _, tt := range tests {
		d := shouldRestart(tt.policy, tt.code, tt.ran, tt.manual, tt.count, tt.prev)
		if d.restart != (tt.want > 0) || (d.restart && d.delay != tt.want) {
			t.Errorf("%s: %+v, want delay %v", tt.name, d, tt.want)
		}
	}
}
