// Package events is the daemon's event bus: services publish what happened
// to containers, images, volumes and networks, and `/events` subscribers
// receive it live, after a replay of recent events (since/until), filtered
// as Docker filters them.
package events

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Message is Docker's event message.
type Message = events.Message

const (
	// historySize is how many past events are kept for `--since` replay.
	historySize = 1024
	// subscriberBuffer is how far a subscriber may fall behind before it is
	// cut off (its channel closed) rather than slowing every publisher.
	subscriberBuffer = 256
)

// Bus fans events out to subscribers. The zero value is not usable; call New.
type Bus struct {
	mu      sync.Mutex // guards history, next and subs
	history []Message  // ring of the last historySize events
	next    int        // ring position of the next event
	subs    map[*subscriber]struct{}
	now     func() time.Time
}

type subscriber struct {
	ch     chan Message
	filter Filter
}

// New returns an empty bus.
func New() *Bus {
	return &Bus{subs: map[*subscriber]struct{}{}, now: time.Now}
}

// Publish records m (stamping its time if unset) and hands it to every
// subscriber whose filter matches. It never blocks: a subscriber too far
// behind is cut off.
func (b *Bus) Publish(m Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.TimeNano == 0 {
		t := b.now()
		m.Time, m.TimeNano = t.Unix(), t.UnixNano()
	}
	if m.Scope == "" {
		m.Scope = "local"
	}
	if len(b.history) < historySize {
		b.history = append(b.history, m)
	} else {
		b.history[b.next] = m
	}
	b.next = (b.next + 1) % historySize
	for s := range b.subs {
		if !s.filter.Match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			close(s.ch)
			delete(b.subs, s)
		}
	}
}

// SubscribeOptions are `docker events` flags.
type SubscribeOptions struct {
	Since, Until time.Time // zero: no replay / no end
	Filter       Filter
}

// Subscribe returns the events that match opts: first those recorded since
// opts.Since (oldest first), then live ones. The channel is closed when ctx
// ends, when opts.Until passes, or when the subscriber falls too far
// behind. An Until in the past gives the replay alone.
func (b *Bus) Subscribe(ctx context.Context, opts SubscribeOptions) <-chan Message {
	out := make(chan Message, subscriberBuffer)
	b.mu.Lock()
	var replay []Message
	if !opts.Since.IsZero() {
		n := len(b.history)
		for i := 0; i < n; i++ {
			m := b.history[(b.next-n+i+historySize)%historySize]
			t := time.Unix(0, m.TimeNano)
			if t.Before(opts.Since) || (!opts.Until.IsZero() && t.After(opts.Until)) || !opts.Filter.Match(m) {
				continue
			}
			replay = append(replay, m)
		}
	}
	live := !(!opts.Until.IsZero() && !opts.Until.After(b.now()))
	var s *subscriber
	if live {
		s = &subscriber{ch: make(chan Message, subscriberBuffer), filter: opts.Filter}
		b.subs[s] = struct{}{}
	}
	b.mu.Unlock()

	go func() {
		defer close(out)
		for _, m := range replay {
			select {
			case out <- m:
			case <-ctx.Done():
				b.unsubscribe(s)
				return
			}
		}
		if s == nil {
			return
		}
		defer b.unsubscribe(s)
		var deadline <-chan time.Time
		if !opts.Until.IsZero() {
			t := time.NewTimer(opts.Until.Sub(b.now()))
			defer t.Stop()
			deadline = t.C
		}
		for {
			select {
			case m, ok := <-s.ch:
				if !ok {
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-deadline:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (b *Bus) unsubscribe(s *subscriber) {
	if s == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Filter is `docker events --filter`: key → accepted values. An empty
// filter accepts everything; within a key any value may match, and every
// key present must match.
type Filter map[string][]string

// Match reports whether m passes f, with Docker's rules: container and
// image match an ID or name by prefix; event matches an action or its
// prefix before ": " (health_status matches "health_status: healthy");
// label matches "key" or "key=value" against the actor's attributes.
func (f Filter) Match(m Message) bool {
	attrs := m.Actor.Attributes
	for key, values := range f {
		if len(values) == 0 {
			continue
		}
		var ok bool
		switch key {
		case "type":
			ok = anyEqual(values, string(m.Type))
		case "event", "action":
			action := string(m.Action)
			short, _, _ := strings.Cut(action, ":")
			ok = anyEqual(values, action) || anyEqual(values, short)
		case "container":
			ok = m.Type == events.ContainerEventType && (anyPrefix(values, m.Actor.ID) || anyPrefix(values, attrs["name"]))
		case "image":
			switch m.Type {
			case events.ContainerEventType:
				ok = anyImage(values, attrs["image"])
			case events.ImageEventType:
				ok = anyPrefix(values, m.Actor.ID) || anyImage(values, attrs["name"])
			}
		case "volume", "network", "plugin", "daemon", "node", "service", "secret", "config":
			ok = string(m.Type) == key && (anyPrefix(values, m.Actor.ID) || anyEqual(values, attrs["name"]))
		case "label":
			ok = anyLabel(values, attrs)
		case "scope":
			ok = anyEqual(values, m.Scope)
		}
		if !ok {
			return false
		}
	}
	return true
}

func anyEqual(values []string, s string) bool {
	for _, v := range values {
		if v == s {
			return true
		}
	}
	return false
}

// anyPrefix matches s exactly or by a prefix of at least one character.
func anyPrefix(values []string, s string) bool {
	if s == "" {
		return false
	}
	for _, v := range values {
		if v != "" && strings.HasPrefix(s, v) {
			return true
		}
	}
	return false
}

// anyImage matches an image name with or without its ":latest" tag.
func anyImage(values []string, name string) bool {
	if name == "" {
		return false
	}
	bare := strings.TrimSuffix(name, ":latest")
	for _, v := range values {
		if v == name || v == bare || strings.TrimSuffix(v, ":latest") == bare {
			return true
		}
	}
	return false
}

func anyLabel(values []string, attrs map[string]string) bool {
	for _, v := range values {
		k, want, hasValue := strings.Cut(v, "=")
		got, present := attrs[k]
		if present && (!hasValue || got == want) {
			return true
		}
	}
	return false
}
