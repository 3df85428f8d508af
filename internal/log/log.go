// Package log carries a *slog.Logger in a context, so every log line a
// request or container produces names the request or container it is about.
package log

import (
	"context"
	"log/slog"
)

type ctxKey struct{}

// WithLogger returns ctx carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// With returns ctx carrying the context's logger with args added, e.g.
// log.With(ctx, "container", id).
func With(ctx context.Context, args ...any) context.Context {
	return WithLogger(ctx, From(ctx).With(args...))
}

// From returns the logger ctx carries, or slog.Default().
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
