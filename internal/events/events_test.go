package events

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func containerEvent(action events.Action, id, name, image string) Message {
	return Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name, "image": image, "com.example": "yes"}}}
}

func TestFilterMatch(t *testing.T) {
	start := containerEvent(events.ActionStart, "abcdef123", "web", "busybox:latest")
	health := containerEvent(events.ActionHealthStatusHealthy, "abcdef123", "web", "busybox")
	pull := Message{Type: events.ImageEventType, Action: events.ActionPull, Actor: events.Actor{ID: "sha256:99", Attributes: map[string]string{"name": "busybox:latest"}}}
	vol := Message{Type: events.VolumeEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "data"}}
	tests := []struct {
		name   string
		filter Filter
		m      Message
		want   bool
	}{
		{"empty filter", nil, start, true},
		{"type", Filter{"type": {"container"}}, start, true},
		{"type mismatch", Filter{"type": {"image"}}, start, false},
		{"event", Filter{"event": {"start", "die"}}, start, true},
		{"event mismatch", Filter{"event": {"die"}}, start, false},
		{"health prefix", Filter{"event": {"health_status"}}, health, true},
		{"container by name", Filter{"container": {"web"}}, start, true},
		{"container by id prefix", Filter{"container": {"abc"}}, start, true},
		{"container other", Filter{"container": {"db"}}, start, false},
		{"container filter on image event", Filter{"container": {"web"}}, pull, false},
		{"image of container, tag implied", Filter{"image": {"busybox"}}, start, true},
		{"image event by name", Filter{"image": {"busybox:latest"}}, pull, true},
		{"label key", Filter{"label": {"com.example"}}, start, true},
		{"label value", Filter{"label": {"com.example=yes"}}, start, true},
		{"label wrong value", Filter{"label": {"com.example=no"}}, start, false},
		{"volume", Filter{"volume": {"data"}}, vol, true},
		{"two keys both match", Filter{"type": {"container"}, "event": {"start"}}, start, true},
		{"two keys one fails", Filter{"type": {"container"}, "event": {"stop"}}, start, false},
	}
	for _, tt := range tests {
		if got := tt.filter.Match(tt.m); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func recv(t *testing.T, ch <-chan Message) (Message, bool) {
	t.Helper()
	select {
	case m, ok := <-ch:
		return m, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return Message{}, false
	}
}

func TestLiveAndReplay(t *testing.T) {
	b := New()
	base := time.Now()
	b.Publish(containerEvent(events.ActionCreate, "c1", "one", "bb"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	live := b.Subscribe(ctx, SubscribeOptions{})
	replayed := b.Subscribe(ctx, SubscribeOptions{Since: base.Add(-time.Minute), Filter: Filter{"event": {"create", "start"}}})
	b.Publish(containerEvent(events.ActionStart, "c1", "one", "bb"))
	b.Publish(containerEvent(events.ActionDie, "c1", "one", "bb"))

	if m, _ := recv(t, live); m.Action != events.ActionStart || m.TimeNano == 0 || m.Scope != "local" {
		t.Fatalf("live got %+v: must not replay without since, and must stamp time and scope", m)
	}
	if m, _ := recv(t, replayed); m.Action != events.ActionCreate {
		t.Fatalf("replay first = %s, want create", m.Action)
	}
	if m, _ := recv(t, replayed); m.Action != events.ActionStart {
		t.Fatalf("then %s, want start (die is filtered out)", m.Action)
	}
}

func TestUntilInThePastEndsAfterReplay(t *testing.T) {
	b := New()
	b.Publish(containerEvent(events.ActionCreate, "c1", "one", "bb"))
	now := time.Now()
	ch := b.Subscribe(context.Background(), SubscribeOptions{Since: now.Add(-time.Hour), Until: now.Add(time.Nanosecond)})
	time.Sleep(2 * time.Millisecond)
	if m, ok := recv(t, ch); !ok || m.Action != events.ActionCreate {
		t.Fatalf("got %+v %v", m, ok)
	}
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel must close after the replay when until has passed")
	}
}

func TestUntilInTheFutureEnds(t *testing.T) {
	b := New()
	ch := b.Subscribe(context.Background(), SubscribeOptions{Until: time.Now().Add(50 * time.Millisecond)})
	if _, ok := recv(t, ch); ok {
		t.Fatal("want the stream to end at until")
	}
}

func TestCancelEndsSubscription(t *testing.T) {
	b := New()
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx, SubscribeOptions{})
	cancel()
	if _, ok := recv(t, ch); ok {
		t.Fatal("want closed channel after cancel")
	}
	b.mu.Lock()
	n := len(b.subs)
	b.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d subscribers left after cancel", n)
	}
}

func TestSlowSubscriberIsCutOffNotBlocking(t *testing.T) {
	b := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.Subscribe(ctx, SubscribeOptions{})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 4*subscriberBuffer; i++ {
			b.Publish(containerEvent(events.ActionStart, "c", "n", "i"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	n := 0
	for range ch {
		n++
	}
	if n == 0 || n >= 4*subscriberBuffer {
		t.Fatalf("slow subscriber got %d events; want some, then a cut-off", n)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	b := New()
	for i := 0; i < historySize+10; i++ {
		b.Publish(containerEvent(events.ActionStart, "c", "n", "i"))
	}
	if len(b.history) != historySize {
		t.Fatalf("history = %d", len(b.history))
	}
}
