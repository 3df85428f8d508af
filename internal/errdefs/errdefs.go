// Package errdefs is berth's one error taxonomy: every error that crosses a
// package boundary can carry a class (not found, invalid, conflict, ...), and
// the API servers map classes to HTTP status or gRPC codes in one place each.
//
// Classify an error where its cause is known:
//
//	return errdefs.NotFound(fmt.Errorf("no such container: %s", id))
//
// and test for a class anywhere above it, through any amount of %w wrapping:
//
//	if errors.Is(err, errdefs.ErrNotFound) { ... }
//
// A class never changes the message: the text stays what the caller wrote.
package errdefs

import (
	"context"
	"errors"
	"fmt"
)

// Class is one kind of failure. The Class values below are the whole set.
type Class struct{ name string }

func (c *Class) Error() string { return c.name }

// The classes. Compare with errors.Is(err, errdefs.ErrX).
var (
	ErrNotFound        = &Class{"not found"}         // the named object does not exist
	ErrInvalid         = &Class{"invalid argument"}  // the request itself is wrong
	ErrConflict        = &Class{"conflict"}          // the object's state forbids it (in use, name taken)
	ErrUnavailable     = &Class{"unavailable"}       // a dependency is down; retrying may work
	ErrForbidden       = &Class{"forbidden"}         // not allowed, whoever asks
	ErrUnauthorized    = &Class{"unauthorized"}      // credentials missing or wrong
	ErrNotImplemented  = &Class{"not implemented"}   // berth does not do this (yet)
	ErrNotModified     = &Class{"not modified"}      // already in the requested state
	ErrCanceled        = &Class{"canceled"}          // the caller gave up
	ErrDeadline        = &Class{"deadline exceeded"} // it took too long
	ErrResourceLimited = &Class{"resource limited"}  // a quota or kernel limit refused it
)

type classified struct {
	class *Class
	err   error
}

func (e *classified) Error() string        { return e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.class }

func wrap(c *Class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: c, err: err}
}

// NotFound marks err as ErrNotFound. A nil err stays nil.
func NotFound(err error) error { return wrap(ErrNotFound, err) }

// Invalid marks err as ErrInvalid.
func Invalid(err error) error { return wrap(ErrInvalid, err) }

// Conflict marks err as ErrConflict.
func Conflict(err error) error { return wrap(ErrConflict, err) }

// Unavailable marks err as ErrUnavailable.
func Unavailable(err error) error { return wrap(ErrUnavailable, err) }

// Forbidden marks err as ErrForbidden.
func Forbidden(err error) error { return wrap(ErrForbidden, err) }

// Unauthorized marks err as ErrUnauthorized.
func Unauthorized(err error) error { return wrap(ErrUnauthorized, err) }

// NotImplemented marks err as ErrNotImplemented.
func NotImplemented(err error) error { return wrap(ErrNotImplemented, err) }

// NotModified marks err as ErrNotModified.
func NotModified(err error) error { return wrap(ErrNotModified, err) }

// ResourceLimited marks err as ErrResourceLimited.
func ResourceLimited(err error) error { return wrap(ErrResourceLimited, err) }

// Invalidf is Invalid(fmt.Errorf(format, args...)), the most common case.
func Invalidf(format string, args ...any) error { return Invalid(fmt.Errorf(format, args...)) }

// NotFoundf is NotFound(fmt.Errorf(format, args...)).
func NotFoundf(format string, args ...any) error { return NotFound(fmt.Errorf(format, args...)) }

// Conflictf is Conflict(fmt.Errorf(format, args...)).
func Conflictf(format string, args ...any) error { return Conflict(fmt.Errorf(format, args...)) }

// ClassOf returns the outermost class err carries, or nil for an
// unclassified error. context.Canceled and context.DeadlineExceeded count as
// ErrCanceled and ErrDeadline.
func ClassOf(err error) *Class {
	var c *classified
	switch {
	case errors.As(err, &c):
		return c.class
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ErrDeadline
	}
	return nil
}
