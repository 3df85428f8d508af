package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/testutil"
)

func testConfig(t *testing.T) Config {
	dir := t.TempDir()
	cfg := Config{
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "exec"),
		Hosts:    []string{"unix://" + filepath.Join(dir, "exec", "berth.sock")},
		Binary:   testutil.BerthBinary(t),
	}
	if os.Geteuid() == 0 {
		cfg.HostNetNS = testutil.TestNetNS(t) // never the machine's own networking
	}
	t.Cleanup(func() { testutil.StopMonitor(cfg.ExecRoot) })
	return cfg
}

func TestServeAndShutdown(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	e, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()

	sock := filepath.Join(cfg.ExecRoot, "berth.sock")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode = %o, want 660 (root and group berth only)", perm)
	}
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://berth/_ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "OK" {
		t.Fatalf("ping = %q", b)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := os.Stat(filepath.Join(cfg.ExecRoot, "berth.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind after shutdown: %v", err)
	}
}

func TestSecondDaemonOnSameRootFails(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	first, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cfg2 := cfg
	cfg2.Hosts = []string{"unix://" + filepath.Join(t.TempDir(), "other.sock")}
	_, err = New(ctx, cfg2)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second daemon on the same data root: err = %v, want a conflict", err)
	}
}

func TestLiveSocketIsNotStolen(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	first, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cfg2 := testConfig(t)
	cfg2.Hosts = cfg.Hosts
	if _, err := New(ctx, cfg2); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("daemon on a live socket: err = %v, want a conflict", err)
	}
}

func TestBadHost(t *testing.T) {
	cfg := testConfig(t)
	cfg.Hosts = []string{"ftp://nowhere"}
	if _, err := New(context.Background(), cfg); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("err = %v, want invalid", err)
	}
}

func TestMain(m *testing.M) { testutil.Main(m) }
