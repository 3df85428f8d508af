package runtimecli

import (
	"encoding/json"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth/berth/internal/errdefs"
)

func newUpdate(g *globals) *cobra.Command {
	var resources string
	var memory, cpuQuota, pidsLimit int64
	var cpuShares, cpuPeriod uint64
	cmd := &cobra.Command{
		Use:   "update [flags] <container-id>",
		Short: "Change a container's resource limits",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &specs.LinuxResources{}
			if resources != "" {
				var b []byte
				var err error
				if resources == "-" {
					b, err = io.ReadAll(os.Stdin)
				} else {
					b, err = os.ReadFile(resources)
				}
				if err != nil {
					return errdefs.Invalidf("--resources %q: %w", resources, err)
				}
				if err := json.Unmarshal(b, r); err != nil {
					return errdefs.Invalidf("--resources %q: %w", resources, err)
				}
			}
			fl := cmd.Flags()
			if fl.Changed("memory") {
				r.Memory = &specs.LinuxMemory{Limit: &memory}
			}
			if fl.Changed("cpu-quota") || fl.Changed("cpu-shares") || fl.Changed("cpu-period") {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				if fl.Changed("cpu-quota") {
					r.CPU.Quota = &cpuQuota
				}
				if fl.Changed("cpu-shares") {
					r.CPU.Shares = &cpuShares
				}
				if fl.Changed("cpu-period") {
					r.CPU.Period = &cpuPeriod
				}
			}
			if fl.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			return g.runtime().Update(g.context(cmd), args[0], r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resources, "resources", "r", "", "path to a LinuxResources JSON file, or - for stdin")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of pids")
	return cmd
}
