package runtimecli

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/berth/berth/internal/ociruntime/spawn"
)

// spawn.EarlyCreate reads the global flags before this package parses
// them, to start a create's init early: it must know every one that may
// come before the verb (all but --systemd-cgroup, which is refused).
func TestEarlyCreateKnowsTheGlobalFlags(t *testing.T) {
	NewCommand("runtime").PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "systemd-cgroup" {
			return
		}
		args := []string{"berth", "runtime", "--" + f.Name}
		if f.Value.Type() != "bool" {
			args = append(args, f.DefValue)
		}
		args = append(args, "create", "id")
		if _, ok := spawn.EarlyCreate(args); !ok {
			t.Errorf("spawn.EarlyCreate does not know --%s", f.Name)
		}
	})
	if root, _ := spawn.EarlyCreate([]string{"berth", "runtime", "run"}); root != NewCommand("runtime").PersistentFlags().Lookup("root").DefValue {
		t.Errorf("spawn.EarlyCreate's default root %q is not --root's default", root)
	}
}
