package container

import (
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
)

func TestCommand(t *testing.T) {
	img := container.Config{Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"}}
	tests := []struct {
		name string
		cfg  container.Config
		img  container.Config
		want string
	}{
		{"image defaults", container.Config{}, img, "/docker-entrypoint.sh nginx -g daemon off;"},
		{"cmd replaces image cmd", container.Config{Cmd: []string{"sh"}}, img, "/docker-entrypoint.sh sh"},
		{"entrypoint drops image cmd", container.Config{Entrypoint: []string{"top"}}, img, "top"},
		{"entrypoint and cmd", container.Config{Entrypoint: []string{"echo"}, Cmd: []string{"hi"}}, img, "echo hi"},
		{"empty entrypoint resets", container.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}}, img, "ls"},
		{"entrypoint \"\" and no cmd: nothing", container.Config{Entrypoint: []string{""}}, img, ""},
		{"entrypoint [] keeps the image cmd", container.Config{Entrypoint: []string{}}, img, "nginx -g daemon off;"},
		{"image cmd only", container.Config{}, container.Config{Cmd: []string{"/hello"}}, "/hello"},
		{"nothing", container.Config{}, container.Config{}, ""},
	}
	for _, tt := range tests {
		path, args := command(&tt.cfg, tt.img)
		got := strings.TrimSpace(path + " " + strings.Join(args, " "))
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "KILL": syscall.SIGKILL, "9": syscall.SIGKILL, "sigusr1": syscall.SIGUSR1, "": syscall.SIGKILL} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"SIGNOPE", "0", "65", "-1", "9x"} {
		if _, err := ParseSignal(in); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseSignal(%q) accepted", in)
		}
	}
}

func TestValidateHostConfig(t *testing.T) {
	bad := []container.HostConfig{
		{RestartPolicy: container.RestartPolicy{Name: "sometimes"}},
		{RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: 3}},
		{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: -1}},
		{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}},
	}
	for _, hc := range bad {
		if err := validateHostConfig(&hc); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%+v accepted", hc.RestartPolicy)
		}
	}
	ok := container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "no"}}
	if err := validateHostConfig(&ok); err != nil {
		t.Error(err)
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		for _, key := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				unlock := k.lock(key)
				mu.Lock()
				inside[key]++
				if inside[key] > 1 {
					t.Errorf("two holders of %s", key)
				}
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				mu.Lock()
				inside[key]--
				mu.Unlock()
				unlock()
			}()
		}
	}
	wg.Wait()
	if len(k.locks) != 0 {
		t.Fatalf("%d lock entries left", len(k.locks))
	}
}
