package container

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
)

// PruneFilters names the filters Prune accepts.
var PruneFilters = []string{"until", "label", "label!"}

// Prune removes every stopped container that matches filters: until
// (created before a timestamp or duration ago), label, label!.
func (s *Service) Prune(ctx context.Context, filters map[string][]string, parseTime func(string) (time.Time, error)) (container.PruneReport, error) {
	var until time.Time
	for _, v := range filters["until"] {
		t, err := parseTime(v)
		if err != nil {
			return container.PruneReport{}, errdefs.Invalidf("invalid filter 'until=%s': %v", v, err)
		}
		until = t
	}
	report := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range s.index.all() {
		if c.Running() || c.State.Status == StatusRestarting || c.State.Status == StatusRemoving {
			continue
		}
		if !until.IsZero() && !c.Created.Before(until) {
			continue
		}
		if !match(filters["label"], func(f string) bool { return hasLabel(c, f) }) {
			continue
		}
		if len(filters["label!"]) > 0 && match(filters["label!"], func(f string) bool { return hasLabel(c, f) }) {
			continue
		}
		if err := s.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			if errors.Is(err, errdefs.ErrConflict) {
				continue // started meanwhile
			}
			return report, err
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.ID)
	}
	if len(report.ContainersDeleted) > 0 {
		s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: events.ActionPrune,
			Actor: events.Actor{Attributes: map[string]string{"reclaimed": fmt.Sprint(report.SpaceReclaimed)}}})
	}
	return report, nil
}

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, ref, newName string) error {
	c, err := s.index.get(ref)
	if err != nil {
		return err
	}
	name, err := ValidateName(newName)
	if err != nil {
		return err
	}
	if name == c.Name {
		return errdefs.Invalidf("Renaming a container with the same name as its current name")
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	if err := s.index.reserve(name, c.ID); err != nil {
		return err
	}
	old := c.Name
	c, err = s.mutate(ctx, c.ID, func(c *Container) { c.Name = name })
	if err != nil {
		s.index.release(name, c.ID)
		return err
	}
	s.index.release(old, c.ID)
	s.cfg.Events.Publish(eventbus.Message{Type: events.ContainerEventType, Action: events.ActionRename,
		Actor: events.Actor{ID: c.ID, Attributes: s.attributes(c, map[string]string{"oldName": "/" + strings.TrimPrefix(old, "/")})}})
	return nil
}

// UsingImage tells whether a container uses image imageID, naming one.
func (s *Service) UsingImage(imageID string) (string, bool) {
	// A removed container's rootfs may still stand on the image's layers:
	// the image's removal must not find them in its way.
	s.awaitReclaims()
	for _, c := range s.index.all() {
		if c.Image == imageID {
			return c.ID, true
		}
	}
	return "", false
}
