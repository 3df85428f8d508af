package idle

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestIdleRelease: the heap is released once after a burst of calls, when
// the quiet period has passed since the burst's last call, and not again
// until another call comes.
func TestIdleRelease(t *testing.T) {
	frees := 0
	r := &Release{quiet: time.Second, free: func() { frees++ }}
	h := r.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	call := func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/_ping", nil)) }

	r.check(time.Now())
	if frees != 0 {
		t.Fatal("released before any call")
	}
	call()
	call()
	r.check(time.Now())
	if frees != 0 {
		t.Fatal("released in the middle of a burst")
	}
	later := time.Now().Add(2 * time.Second)
	r.check(later)
	r.check(later.Add(time.Second))
	if frees != 1 {
		t.Fatalf("released %d times after one quiet burst, want 1", frees)
	}
	call()
	r.check(time.Now().Add(2 * time.Second))
	if frees != 2 {
		t.Fatalf("released %d times after a second burst, want 2", frees)
	}
}
