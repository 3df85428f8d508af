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
	for _, args := range [][]string{{"--restart", "on-failure:x", "img"}, {"--log-opt", "nokey", "img"}, {"--cgroupns", "bogus", "img"}} {
		var o containerOptions
		cmd := &cobra.Command{Use: "run"}
		o.addFlags(cmd.Flags())
		cmd.Flags().Parse(args)
		if _, err := o.request(cmd, cmd.Flags().Args()); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err = %v, want one naming %s", args, err, args[0])
		}
	}
}

// TestNamespaceFlags: --pid, --ipc, --uts and --cgroupns reach the
// HostConfig as docker's CLI sends them.
func TestNamespaceFlags(t *testing.T) {
	var o containerOptions
	cmd := &cobra.Command{Use: "run"}
	o.addFlags(cmd.Flags())
	cmd.Flags().Parse([]string{"--pid", "container:a", "--ipc", "shareable", "--uts", "host", "--cgroupns", "private", "img"})
	req, err := o.request(cmd, cmd.Flags().Args())
	if err != nil {
		t.Fatal(err)
	}
	if hc := req.HostConfig; hc.PidMode != "container:a" || hc.IpcMode != "shareable" || hc.UTSMode != "host" || hc.CgroupnsMode != "private" {
		t.Errorf("HostConfig: pid %q ipc %q uts %q cgroupns %q", hc.PidMode, hc.IpcMode, hc.UTSMode, hc.CgroupnsMode)
	}
}

// TestTopLevelNames: the table NewCommandFor picks from names each
// command by exactly the name and aliases the command answers to, and the
// command made for a word is the one cobra runs.
func TestTopLevelNames(t *testing.T) {
	for _, e := range topLevel {
		cmd := e.make(&CLI{})
		got := append([]string{cmd.Name()}, cmd.Aliases...)
		if strings.Join(got, ",") != strings.Join(e.names, ",") {
			t.Errorf("table names %v, the command answers to %v", e.names, got)
		}
		for _, word := range e.names {
			root := NewCommandFor([]string{"-H", "unix:///x", word, "--help"})
			if len(root.Commands()) != 1 {
				t.Fatalf("%s: %d commands made", word, len(root.Commands()))
			}
			found, _, err := root.Find([]string{word})
			if err != nil || found.Name() != cmd.Name() {
				t.Errorf("%s: found %v, %v", word, found, err)
			}
		}
	}
	if n := len(NewRootCommand().Commands()); n != len(topLevel) {
		t.Errorf("the whole tree has %d commands, the table %d", n, len(topLevel))
	}
}

func TestCommandWord(t *testing.T) {
	for args, want := range map[string]string{
		"":                    "",
		"run --rm hello":      "run",
		"-H unix:///s ps -a":  "ps",
		"--host unix:///s ps": "ps",
		"--host=unix:///s ps": "ps",
		"--help":              "",
		"-- run":              "",
		"--help images":       "images",
		"-H run version":      "version",
	} {
		if got := commandWord(strings.Fields(args)); got != want {
			t.Errorf("commandWord(%q) = %q, want %q", args, got, want)
		}
	}
	// An unknown word, and none, make the whole tree (help and the
	// unknown-command error need it).
	extra := Command{Name: "daemon", Make: func() *cobra.Command { return &cobra.Command{Use: "daemon"} }}
	for _, args := range [][]string{nil, {"nosuch"}, {"help", "run"}, {"__complete", "r"}} {
		if n := len(NewCommandFor(args, extra).Commands()); n != len(topLevel)+1 {
			t.Errorf("%q: %d commands made", args, n)
		}
	}
	if cmds := NewCommandFor([]string{"daemon"}, extra).Commands(); len(cmds) != 1 || cmds[0].Name() != "daemon" {
		t.Errorf("daemon: %v", cmds)
	}
}

// TestTemplateParsedOncePrintsEach: a --format template is parsed once per
// text and still printed for every item; a listing printed through
// buffered reaches the output whole, and a parse error is reported.
func TestTemplateParsedOncePrintsEach(t *testing.T) {
	var out strings.Builder
	c := &CLI{out: &out}
	err := c.buffered(func() error {
		for _, v := range []struct{ Name string }{{"a"}, {"b"}, {"c"}} {
			if err := c.template("{{.Name}}-{{upper .Name}}", v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || out.String() != "a-A\nb-B\nc-C\n" {
		t.Fatalf("output %q, err %v", out.String(), err)
	}
	if len(c.templates) != 1 {
		t.Errorf("%d templates parsed, want 1", len(c.templates))
	}
	if c.out != &out {
		t.Error("buffered did not restore the output")
	}
	if err := c.template("{{.Name", struct{ Name string }{}); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("bad template: %v", err)
	}
}
