package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasHelp walks the command tree: a flag clash (two flags
// with one shorthand) panics only when a command's flags are built, so
// every command is asked for --help.
func TestEveryCommandHasHelp(t *testing.T) {
	root := NewRootCommand()
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		path := strings.Fields(cmd.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"berth"}, path...), " "), func(t *testing.T) {
			r := NewRootCommand()
			var out bytes.Buffer
			r.SetOut(&out)
			r.SetArgs(append(path, "--help"))
			if err := r.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("--help: %v", err)
			}
			if !strings.Contains(out.String(), "Usage:") {
				t.Fatalf("--help printed %q", out.String())
			}
		})
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestRunFlagsStopAtImage(t *testing.T) {
	var o containerOptions
	cmd := &cobra.Command{Use: "run", RunE: func(*cobra.Command, []string) error { return nil }}
	o.addFlags(cmd.Flags())
	if err := cmd.Flags().Parse([]string{"--rm", "-e", "A=1", "-h", "box", "busybox", "ls", "-la"}); err != nil {
		t.Fatal(err)
	}
	req, err := o.request(cmd, cmd.Flags().Args())
	if err != nil {
		t.Fatal(err)
	}
	if req.Config.Image != "busybox" || strings.Join(req.Config.Cmd, " ") != "ls -la" || !req.HostConfig.AutoRemove || req.Config.Hostname != "box" || req.Config.Env[0] != "A=1" {
		t.Fatalf("request = %+v / %+v", req.Config, req.HostConfig)
	}
}

func TestRunFlagErrorsNameTheFlag(t *testing.T) {
	for _, args := range [][]string{{"--restart", "on-failure:x", "img"}, {"--log-opt", "nokey", "img"}} {
		var o containerOptions
		cmd := &cobra.Command{Use: "run"}
		o.addFlags(cmd.Flags())
		cmd.Flags().Parse(args)
		if _, err := o.request(cmd, cmd.Flags().Args()); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err = %v, want one naming %s", args, err, args[0])
		}
	}
}
