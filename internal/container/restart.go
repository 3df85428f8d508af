package container

import (
	"time"

	"github.com/moby/moby/api/types/container"
)

// restartDecision is what Docker's restart policy says after an exit.
type restartDecision struct {
	restart bool
	delay   time.Duration
}

const (
	minRestartDelay = 100 * time.Millisecond
	maxRestartDelay = time.Minute
	// A container that ran this long resets the backoff, as Docker's.
	resetBackoffAfter = 10 * time.Second
)

// shouldRestart applies policy to an exit: code, how long the container
// ran, whether a user stopped it, how many restarts came before, and the
// previous delay. Pure: tested without containers.
func shouldRestart(policy container.RestartPolicy, code int, ran time.Duration, manualStop bool, count int, prevDelay time.Duration) restartDecision {
	if manualStop {
		return restartDecision{}
	}
	switch policy.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if code == 0 || (policy.MaximumRetryCount > 0 && count >= policy.MaximumRetryCount) {
			return restartDecision{}
		}
	default:
		return restartDecision{}
	}
	delay := minRestartDelay
	if ran < resetBackoffAfter && prevDelay > 0 {
		delay = min(prevDelay*2, maxRestartDelay)
	}
	return restartDecision{restart: true, delay: delay}
}
