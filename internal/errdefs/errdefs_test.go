package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestClassSurvivesWrapping(t *testing.T) {
	base := NotFoundf("no such container: %s", "web")
	wrapped := fmt.Errorf("start: %w", base)
	if !errors.Is(wrapped, ErrNotFound) {
		t.Fatalf("errors.Is(wrapped, ErrNotFound) = false")
	}
	if errors.Is(wrapped, ErrConflict) {
		t.Fatalf("a not-found error must not count as a conflict")
	}
	if got, want := wrapped.Error(), "start: no such container: web"; got != want {
		t.Fatalf("message = %q, want %q (a class must not change the text)", got, want)
	}
	if got := ClassOf(wrapped); got != ErrNotFound {
		t.Fatalf("ClassOf = %v, want not found", got)
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *Class
	}{
		{"nil", nil, nil},
		{"plain", errors.New("boom"), nil},
		{"invalid", Invalidf("bad %s", "x"), ErrInvalid},
		{"outermost wins", Conflict(NotFound(errors.New("x"))), ErrConflict},
		{"canceled", fmt.Errorf("pull: %w", context.Canceled), ErrCanceled},
		{"deadline", context.DeadlineExceeded, ErrDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassOf(tt.err); got != tt.want {
				t.Fatalf("ClassOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestNilStaysNil(t *testing.T) {
	if NotFound(nil) != nil || Invalid(nil) != nil {
		t.Fatal("classifying nil must give nil")
	}
}

func TestHTTPStatusRoundTrip(t *testing.T) {
	for _, c := range []*Class{ErrNotFound, ErrInvalid, ErrConflict, ErrUnauthorized, ErrForbidden, ErrNotImplemented, ErrUnavailable} {
		err := wrap(c, errors.New("x"))
		back := FromHTTPStatus(HTTPStatus(err), errors.New("x"))
		if ClassOf(back) != c {
			t.Errorf("%v → %d → %v", c, HTTPStatus(err), ClassOf(back))
		}
	}
	if HTTPStatus(errors.New("plain")) != 500 {
		t.Error("an unclassified error must be a 500")
	}
}
