package runtimecli

import (
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/cgroup"
	"github.com/berth/berth/internal/errdefs"
)

// runc's events JSON (libcontainer/types): {"type":"stats","id":..,"data":{..}}.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

type cpuUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

type throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

type memoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type blkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type runcStats struct {
	CPU struct {
		Usage      cpuUsage   `json:"usage,omitempty"`
		Throttling throttling `json:"throttling,omitempty"`
	} `json:"cpu"`
	Memory struct {
		Usage memoryEntry       `json:"usage,omitempty"`
		Raw   map[string]uint64 `json:"raw,omitempty"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current,omitempty"`
		Limit   uint64 `json:"limit,omitempty"`
	} `json:"pids"`
	Blkio struct {
		IoServiceBytesRecursive []blkioEntry `json:"ioServiceBytesRecursive,omitempty"`
		IoServicedRecursive     []blkioEntry `json:"ioServicedRecursive,omitempty"`
	} `json:"blkio"`
}

// toRuncStats converts cgroup.Stats into runc's events data shape.
func toRuncStats(s *cgroup.Stats) *runcStats {
	var r runcStats
	r.CPU.Usage = cpuUsage{Total: s.CPU.Usage, Percpu: s.CPU.PerCPU, Kernel: s.CPU.System, User: s.CPU.User}
	r.CPU.Throttling = throttling{Periods: s.CPU.Periods, ThrottledPeriods: s.CPU.ThrottledPeriods, ThrottledTime: s.CPU.ThrottledTime}
	r.Memory.Usage = memoryEntry{Limit: s.Memory.Limit, Usage: s.Memory.Usage, Max: s.Memory.MaxUsage, Failcnt: s.Memory.Failcnt}
	r.Memory.Raw = s.Memory.Stat
	r.Pids.Current, r.Pids.Limit = s.Pids.Current, s.Pids.Limit
	for _, io := range s.IO {
		r.Blkio.IoServiceBytesRecursive = append(r.Blkio.IoServiceBytesRecursive, blkioEntry{io.Major, io.Minor, io.Op, io.Bytes})
		r.Blkio.IoServicedRecursive = append(r.Blkio.IoServicedRecursive, blkioEntry{io.Major, io.Minor, io.Op, io.IOs})
	}
	return &r
}

func newEvents(g *globals) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [--stats] [--interval d] <container-id>",
		Short: "Display container resource statistics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return errdefs.Invalidf("--interval %s: must be positive", interval)
			}
			ctx := g.context(cmd)
			enc := json.NewEncoder(os.Stdout)
			emit := func() error {
				st, err := g.runtime().Stats(ctx, args[0])
				if err != nil {
					return err
				}
				return enc.Encode(event{Type: "stats", ID: args[0], Data: toRuncStats(st)})
			}
			if err := emit(); err != nil || stats {
				return err
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					if err := emit(); err != nil {
						return err
					}
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "interval between statistics")
	return cmd
}
