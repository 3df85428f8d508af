package cli

import (
	"fmt"
	"runtime"
	"text/template"

	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/version"
)

// VersionInfo is what `berth version --format` templates see, shaped like
// docker's: {{.Client.Version}}, {{.Server.Version}}.
type VersionInfo struct {
	Client ClientVersion
	Server *system.VersionResponse
}

// ClientVersion describes this binary as a client.
type ClientVersion struct {
	Version    string
	APIVersion string `json:"ApiVersion"`
	GoVersion  string
	GitCommit  string
	Os         string
	Arch       string
}

const versionTemplate = `Client:
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}
 Go version:        {{.Client.GoVersion}}
 Git commit:        {{.Client.GitCommit}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
{{- if .Server}}

Server: {{.Server.Platform.Name}}
 Engine:
  Version:          {{.Server.Version}}
  API version:      {{.Server.APIVersion}} (minimum version {{.Server.MinAPIVersion}})
  Go version:       {{.Server.GoVersion}}
  Git commit:       {{.Server.GitCommit}}
  OS/Arch:          {{.Server.Os}}/{{.Server.Arch}}
  Kernel version:   {{.Server.KernelVersion}}
{{- end}}
`

func newVersionCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmplText := versionTemplate
			if format != "" {
				tmplText = format + "\n"
			}
			tmpl, err := template.New("version").Parse(tmplText)
			if err != nil {
				return fmt.Errorf("template parsing error: %w", err)
			}
			info := VersionInfo{Client: ClientVersion{
				Version:    version.Version,
				APIVersion: api.MaxVersion,
				GoVersion:  runtime.Version(),
				GitCommit:  version.GitCommit(),
				Os:         runtime.GOOS,
				Arch:       runtime.GOARCH,
			}}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			sv, serr := cl.ServerVersion(cmd.Context())
			if serr == nil {
				info.Server = &sv
				info.Client.APIVersion, _ = cl.APIVersion(cmd.Context())
			}
			if err := tmpl.Execute(c.out, info); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			return serr
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	return cmd
}
