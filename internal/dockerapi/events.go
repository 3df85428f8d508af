package dockerapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/events"
)

var eventFilters = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

func (s *Server) routeEvents(bus *events.Bus) {
	s.handle("GET /events", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, eventFilters...)
		if err != nil {
			return err
		}
		opts := events.SubscribeOptions{Filter: events.Filter(f)}
		q := r.URL.Query()
		for key, dst := range map[string]*time.Time{"since": &opts.Since, "until": &opts.Until} {
			if v := q.Get(key); v != "" {
				t, err := parseTimestamp(v)
				if err != nil {
					return errdefs.Invalidf("invalid %s %q: %v", key, v, err)
				}
				*dst = t
			}
		}
		if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
			return errdefs.Invalidf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
		}
		ch := bus.Subscribe(r.Context(), opts)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		f2, _ := w.(http.Flusher)
		if f2 != nil {
			f2.Flush()
		}
		enc := json.NewEncoder(w)
		for m := range ch {
			if err := enc.Encode(m); err != nil {
				return nil
			}
			if f2 != nil {
				f2.Flush()
			}
		}
		return nil
	})
}
