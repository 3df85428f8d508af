// Package cli is berth's Docker-compatible command line: one file per verb,
// each a client of the Engine API through package client and nothing else.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
)

// CLI holds what every verb shares: where the daemon is and where output goes.
type CLI struct {
	host   string
	out    io.Writer
	errOut io.Writer
	client *client.Client
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

// NewRootCommand returns the `berth` command with every client verb.
// Roles that are not API clients (daemon, runtime, init) are added by main.
func NewRootCommand() *cobra.Command {
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
	root.AddCommand(
		newVersionCommand(c),
		newCreateCommand(c), newRunCommand(c), newStartCommand(c), newStopCommand(c),
		newKillCommand(c), newRmCommand(c), newWaitCommand(c), newLogsCommand(c),
		newInspectCommand(c), newPsCommand(c), newVolumeCommand(c), newNetworkCommand(c),
		newRestartCommand(c), newRenameCommand(c), newAttachCommand(c), newEventsCommand(c),
		newInfoCommand(c), newContainerCommand(c), newExecCommand(c), newBuildCommand(c),
		newPullCommand(c), newPushCommand(c), newImagesCommand(c), newTagCommand(c), newRmiCommand(c),
		newLoadCommand(c), newImportCommand(c), newSaveCommand(c), newLoginCommand(c), newLogoutCommand(c),
	)
	root.AddCommand(extraCommands(c)...) // extras.go
	return root
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
