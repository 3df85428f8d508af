package ociruntime

import (
	"context"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUpdateStatsErrors(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	ctx := context.Background()
	if err := r.Update(ctx, "nope", nil); err == nil {
		t.Fatal("Update with nil resources: want error")
	}
	if err := r.Update(ctx, "nope", &specs.LinuxResources{}); err == nil {
		t.Fatal("Update of unknown container: want error")
	}
	if _, err := r.Stats(ctx, "nope"); err == nil {
		t.Fatal("Stats of unknown container: want error")
	}
}
