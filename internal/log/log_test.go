package log

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestWithCarriesAttributes(t *testing.T) {
	var buf bytes.Buffer
	ctx := WithLogger(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)))
	ctx = With(ctx, "container", "abc")
	From(ctx).Info("started")
	if !strings.Contains(buf.String(), "container=abc") {
		t.Fatalf("log line %q lacks the container attribute", buf.String())
	}
}

func TestFromDefaults(t *testing.T) {
	if From(context.Background()) != slog.Default() {
		t.Fatal("From on a bare context must give slog.Default()")
	}
}
