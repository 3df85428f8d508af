// Package cli is berth's Docker-compatible command line: one file per verb,
// each a client of the Engine API through package client and nothing else.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
)

// CLI holds what every verb shares: where the daemon is and where output goes.
type CLI struct {
	host   string
	out    io.Writer
	errOut io.Writer
	client *client.Client
	// templates are the --format templates parsed so far, by text.
	templates map[string]*template.Template
}

// Client returns the API client, made on first use from -H, BERTH_HOST or
// DOCKER_HOST.
func (c *CLI) Client() (*client.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	host := c.host
	if host == "" {
		host = client.HostFromEnv()
	}
	cl, err := client.New(host)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// Command is a top-level command main adds to the tree (the roles that are
// not API clients: daemon, runtime, monitor), made only when needed.
type Command struct {
	Name string
	Make func() *cobra.Command
}

// topLevel lists the client verbs by the names and aliases they answer to.
// TestTopLevelNames checks it against the commands themselves.
var topLevel = []struct {
	names []string
	make  func(*CLI) *cobra.Command
}{
	{[]string{"version"}, newVersionCommand},
	{[]string{"create"}, newCreateCommand}, {[]string{"run"}, newRunCommand},
	{[]string{"start"}, newStartCommand}, {[]string{"stop"}, newStopCommand},
	{[]string{"kill"}, newKillCommand}, {[]string{"rm"}, newRmCommand},
	{[]string{"wait"}, newWaitCommand}, {[]string{"logs"}, newLogsCommand},
	{[]string{"inspect"}, newInspectCommand}, {[]string{"ps", "list", "ls"}, newPsCommand},
	{[]string{"volume"}, newVolumeCommand}, {[]string{"network"}, newNetworkCommand},
	{[]string{"restart"}, newRestartCommand}, {[]string{"rename"}, newRenameCommand},
	{[]string{"attach"}, newAttachCommand}, {[]string{"events"}, newEventsCommand},
	{[]string{"info"}, newInfoCommand}, {[]string{"container"}, newContainerCommand},
	{[]string{"exec"}, newExecCommand}, {[]string{"build"}, newBuildCommand},
	{[]string{"pull"}, newPullCommand}, {[]string{"push"}, newPushCommand},
	{[]string{"images"}, newImagesCommand}, {[]string{"tag"}, newTagCommand},
	{[]string{"rmi"}, newRmiCommand}, {[]string{"load"}, newLoadCommand},
	{[]string{"import"}, newImportCommand}, {[]string{"save"}, newSaveCommand},
	{[]string{"login"}, newLoginCommand}, {[]string{"logout"}, newLogoutCommand},
	{[]string{"cp"}, newCpCommand}, {[]string{"commit"}, newCommitCommand},
	{[]string{"export"}, newExportCommand}, {[]string{"diff"}, newDiffCommand},
	{[]string{"stats"}, newStatsCommand}, {[]string{"top"}, newTopCommand},
	{[]string{"pause"}, newPauseCommand}, {[]string{"unpause"}, newUnpauseCommand},
	{[]string{"update"}, newUpdateCommand}, {[]string{"system"}, newSystemCommand},
}

// NewRootCommand returns the `berth` command with every client verb.
func NewRootCommand() *cobra.Command { return NewCommandFor(nil) }

// NewCommandFor returns the `berth` command to run args (os.Args[1:]),
// with main's extra commands. A CLI process runs one command, and making
// the whole tree (forty verbs, hundreds of flags) cost every invocation
// milliseconds: when args name a top-level command, only that one is
// made. Anything else (no command, help, completion, an unknown word)
// gets the whole tree, so help and errors read as always.
func NewCommandFor(args []string, extra ...Command) *cobra.Command {
	c := &CLI{out: os.Stdout, errOut: os.Stderr}
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A fast container engine that speaks the Docker Engine API",
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			HiddenDefaultCmd: true,
		},
	}
	// As in docker, -h is --hostname for run and create; help is --help only.
	root.PersistentFlags().Bool("help", false, "print usage")
	root.PersistentFlags().StringVarP(&c.host, "host", "H", "", "daemon socket to connect to (default: $BERTH_HOST, $DOCKER_HOST, unix:///run/berth/berth.sock)")
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	word := commandWord(args)
	for _, t := range topLevel {
		if word != "" && slices.Contains(t.names, word) {
			root.AddCommand(t.make(c))
			return root
		}
	}
	for _, e := range extra {
		if word != "" && e.Name == word {
			root.AddCommand(e.Make())
			return root
		}
	}
	for _, t := range topLevel {
		root.AddCommand(t.make(c))
	}
	for _, e := range extra {
		root.AddCommand(e.Make())
	}
	return root
}

// commandWord is the first word of args that is not a global flag or its
// value: the top-level command's name, or "" when there is none.
func commandWord(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return ""
		case a == "-H" || a == "--host":
			i++ // its value
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// Execute runs root and returns the process exit code. Errors print as
// "berth: <message>", the way docker prints them.
func Execute(ctx context.Context, root *cobra.Command) int {
	if err := root.ExecuteContext(ctx); err != nil {
		if se, ok := err.(StatusError); ok {
			if se.Message != "" {
				fmt.Fprintln(os.Stderr, "berth:", se.Message)
			}
			return se.Code
		}
		fmt.Fprintln(os.Stderr, "berth:", err)
		return 1
	}
	return 0
}

// StatusError ends the command with a given exit code (as `docker run`
// exits with the container's code).
type StatusError struct {
	Code    int
	Message string
}

func (e StatusError) Error() string { return fmt.Sprintf("exit status %d: %s", e.Code, e.Message) }
