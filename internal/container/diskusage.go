package container

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
)

// RootfsUsage is an optional part of Images (`docker ps -s`, `system df`).
type RootfsUsage interface {
	// RootfsUsage is the disk space of container id's own changes.
	RootfsUsage(ctx context.Context, id string) (int64, error)
}

// DiskUsage lists every container with the space its changes take
// (SizeRw), for GET /system/df.
func (s *Service) DiskUsage(ctx context.Context) ([]container.Summary, error) {
	usage, _ := s.cfg.Images.(RootfsUsage)
	now := time.Now()
	all := s.index.all()
	out := make([]container.Summary, 0, len(all))
	for _, c := range all {
		sum := c.Summary(now)
		if usage != nil {
			if n, err := usage.RootfsUsage(ctx, c.ID); err == nil {
				sum.SizeRw = n
			}
		}
		out = append(out, sum)
	}
	return out, nil
}
