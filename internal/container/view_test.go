package container

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
)

func TestCommandColumn(t *testing.T) {
	c := &Container{Path: "sh", Args: []string{"-c", "echo hi"}}
	if got := c.Command(); got != `sh -c "echo hi"` {
		t.Fatalf("Command = %s", got)
	}
}

func fixtureContainers() []*Container {
	mk := func(id, name string, created int64, st State, labels map[string]string) *Container {
		return &Container{ID: id + strings.Repeat("0", 64-len(id)), Name: name, Created: time.Unix(created, 0), State: st,
			Config: &container.Config{Labels: labels}, ImageRef: "busybox", Image: "sha256:bb"}
	}
	// Newest first, as index.all returns them.
	return []*Container{
		mk("d4", "web2", 4, State{Status: StatusExited, ExitCode: 1}, nil),
		mk("c3", "db", 3, State{Status: StatusRunning}, map[string]string{"tier": "data"}),
		mk("b2", "web1", 2, State{Status: StatusExited, ExitCode: 0}, map[string]string{"tier": "front"}),
		mk("a1", "cache", 1, State{Status: StatusCreated}, nil),
	}
}

func names(cs []*Container) string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}

func TestSelectContainers(t *testing.T) {
	all := fixtureContainers()
	lookup := func(ref string) (*Container, error) {
		for _, c := range all {
			if c.Name == ref {
				return c, nil
			}
		}
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	image := func(c *Container, ref string) bool { return ref == c.ImageRef }
	tests := []struct {
		name string
		opts ListOptions
		want string
	}{
		{"running only by default", ListOptions{}, "db"},
		{"all", ListOptions{All: true}, "web2,db,web1,cache"},
		{"status implies all", ListOptions{Filters: map[string][]string{"status": {"exited"}}}, "web2,web1"},
		{"exited code", ListOptions{Filters: map[string][]string{"exited": {"0"}}}, "web1"},
		{"name is a regexp", ListOptions{All: true, Filters: map[string][]string{"name": {"^/web"}}}, "web2,web1"},
		{"id prefix", ListOptions{All: true, Filters: map[string][]string{"id": {"b2"}}}, "web1"},
		{"label key", ListOptions{All: true, Filters: map[string][]string{"label": {"tier"}}}, "db,web1"},
		{"label value", ListOptions{All: true, Filters: map[string][]string{"label": {"tier=front"}}}, "web1"},
		{"before", ListOptions{All: true, Filters: map[string][]string{"before": {"db"}}}, "web1,cache"},
		{"since", ListOptions{All: true, Filters: map[string][]string{"since": {"web1"}}}, "web2,db"},
		{"limit implies all", ListOptions{Limit: 2}, "web2,db"},
		{"ancestor", ListOptions{All: true, Filters: map[string][]string{"ancestor": {"busybox"}}}, "web2,db,web1,cache"},
		{"volume filter matches nothing yet", ListOptions{All: true, Filters: map[string][]string{"volume": {"data"}}}, ""},
	}
	for _, tt := range tests {
		got, err := selectContainers(all, tt.opts, lookup, image)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if names(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, names(got), tt.want)
		}
	}
	for _, bad := range []map[string][]string{{"status": {"sleeping"}}, {"exited": {"x"}}, {"name": {"("}}, {"before": {"nope"}}} {
		if _, err := selectContainers(all, ListOptions{Filters: bad}, lookup, image); err == nil {
			t.Errorf("filters %v accepted", bad)
		} else if !errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("filters %v: unclassified error %v", bad, err)
		}
	}
}

func TestSummary(t *testing.T) {
	c := fixtureContainers()[1]
	c.State.StartedAt = time.Unix(0, 0)
	s := c.Summary(time.Unix(120, 0))
	if s.Names[0] != "/db" || s.State != "running" || s.Status != "Up 2 minutes" || s.Labels["tier"] != "data" {
		t.Fatalf("summary = %+v", s)
	}
}
