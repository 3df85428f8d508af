package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
)

// ContainerRestart stops (with the timeout, or the container's own) and
// starts a container.
func (c *Client) ContainerRestart(ctx context.Context, id string, timeout *int, signal string) error {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/restart", q, nil, true))
}

// ContainerRename gives a container a new name.
func (c *Client) ContainerRename(ctx context.Context, id, name string) error {
	q := url.Values{"name": {name}}
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/rename", q, nil, true))
}

// ContainerPrune removes stopped containers.
func (c *Client) ContainerPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	q, err := filterQuery(filters)
	if err != nil {
		return container.PruneReport{}, err
	}
	var out container.PruneReport
	resp, err := c.do(ctx, http.MethodPost, "/containers/prune", q, nil, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// Info is the daemon's system-wide information (`docker info`).
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var out system.Info
	return out, c.getJSON(ctx, "/info", nil, &out)
}

// EventsOptions are `events` flags: since/until as Docker accepts them
// (Unix seconds, RFC 3339 or durations resolved by the caller).
type EventsOptions struct {
	Since, Until string
	Filters      map[string][]string
}

// Events streams the daemon's events until ctx ends or, with Until, the
// daemon closes the stream. The error channel receives at most one error.
func (c *Client) Events(ctx context.Context, opts EventsOptions) (<-chan events.Message, <-chan error) {
	msgs, errs := make(chan events.Message), make(chan error, 1)
	q, err := filterQuery(opts.Filters)
	if err != nil {
		errs <- err
		return msgs, errs
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Until != "" {
		q.Set("until", opts.Until)
	}
	resp, err := c.do(ctx, http.MethodGet, "/events", q, nil, true)
	if err != nil {
		errs <- err
		return msgs, errs
	}
	go func() {
		defer resp.Body.Close()
		defer close(msgs)
		dec := json.NewDecoder(resp.Body)
		for {
			var m events.Message
			if err := dec.Decode(&m); err != nil {
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					errs <- fmt.Errorf("reading events: %w", err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, errs
}
