// Package idle gives a server's memory back to the kernel once its API has
// been quiet for a while: the daemon's and the monitor's.
package idle

import (
	"context"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/berth/berth/internal/embedmem"
	"github.com/berth/berth/internal/log"
)

// Release gives the heap a burst of API calls grew back to the kernel,
// and drops the pages of embedded blobs (embedmem),
// once the server has been quiet for a while. Go's own scavenger returns
// freed pages slowly and keeps a margin above the heap goal; a daemon that
// spends most of its life idle would hold megabytes for nothing (the
// monitor: after starting 50 containers, its anonymous memory held 6 MB
// more than their state needs). A call
// that started is what counts as activity: a stream held open for hours
// (events, logs -f, attach) does not keep the memory held.
type Release struct {
	quiet    time.Duration // how long without a new call counts as idle
	lastCall atomic.Int64  // unix nanoseconds of the latest call's start
	released atomic.Int64  // lastCall when the heap was last released
	free     func()        // debug.FreeOSMemory, or a test's counter
}

// New returns a Release after quiet; Run runs it.
func New(ctx context.Context, quiet time.Duration) *Release {
	return &Release{quiet: quiet, free: func() { freeMemory(ctx) }}
}

// freeMemory returns the free heap to the kernel and drops the pages of
// the embedded programs, installed by now, that the kernel mapped in.
func freeMemory(ctx context.Context) {
	debug.FreeOSMemory()
	if err := embedmem.Release(); err != nil {
		log.From(ctx).Warn("release embedded blobs", "err", err)
	}
}

// Wrap notes the start of every call to h.
func (r *Release) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		r.lastCall.Store(time.Now().UnixNano())
		h.ServeHTTP(w, q)
	})
}

// Run releases the heap once at start (start-up garbage) and then after
// every burst, once quiet has passed since its last call, until ctx ends.
func (r *Release) Run(ctx context.Context) {
	r.free()
	tick := time.NewTicker(r.quiet / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.check(now)
		}
	}
}

// check releases the heap if calls came since the last release and none
// in the last quiet period.
func (r *Release) check(now time.Time) {
	last := r.lastCall.Load()
	if last == 0 || last == r.released.Load() || now.Sub(time.Unix(0, last)) < r.quiet {
		return
	}
	r.released.Store(last)
	r.free()
}
