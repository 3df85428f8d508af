package cli

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth/berth/internal/errdefs"
)

// healthOptions are run/create's --health-* flags.
type healthOptions struct {
	cmd                                           string
	interval, timeout, startPeriod, startInterval time.Duration
	retries                                       int
	none                                          bool
}

func (o *healthOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.cmd, "health-cmd", "", "command to run to check health")
	f.DurationVar(&o.interval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.timeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.startPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	f.DurationVar(&o.startInterval, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h) (default 0s)")
	f.IntVar(&o.retries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	f.BoolVar(&o.none, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// apply sets cfg.Healthcheck from the flags, with docker's checks.
func (o *healthOptions) apply(cmd *cobra.Command, cfg *container.Config) error {
	f := cmd.Flags()
	set := f.Changed("health-cmd") || f.Changed("health-interval") || f.Changed("health-timeout") ||
		f.Changed("health-start-period") || f.Changed("health-start-interval") || f.Changed("health-retries")
	if o.none {
		if set {
			return errdefs.Invalidf("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !set {
		return nil
	}
	for name, d := range map[string]time.Duration{"--health-interval": o.interval, "--health-timeout": o.timeout, "--health-start-period": o.startPeriod, "--health-start-interval": o.startInterval} {
		if d < 0 {
			return errdefs.Invalidf("%s cannot be negative", name)
		}
	}
	if o.retries < 0 {
		return errdefs.Invalidf("--health-retries cannot be negative")
	}
	h := &container.HealthConfig{Interval: o.interval, Timeout: o.timeout, StartPeriod: o.startPeriod, StartInterval: o.startInterval, Retries: o.retries}
	if o.cmd != "" {
		h.Test = []string{"CMD-SHELL", o.cmd}
	}
	cfg.Healthcheck = h
	return nil
}
