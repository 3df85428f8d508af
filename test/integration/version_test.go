// Package integration tests a real berth daemon through package client,
// the way every Engine API user reaches it.
package integration

import (
	"context"
	"testing"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/testutil"
)

func TestDaemonAnswersVersion(t *testing.T) {
	d := testutil.StartDaemon(t)
	v, err := d.Client.ServerVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != api.MaxVersion || v.MinAPIVersion != api.MinVersion {
		t.Fatalf("version = %+v", v)
	}
}

func TestDaemonsSideBySide(t *testing.T) {
	a := testutil.StartDaemon(t)
	b := testutil.StartDaemon(t)
	for _, d := range []*testutil.Daemon{a, b} {
		if _, err := d.Client.Ping(context.Background()); err != nil {
			t.Fatalf("daemon at %s: %v", d.Host, err)
		}
	}
}
