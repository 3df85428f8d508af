package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/jsonstream"
)

// BuildOptions are the parameters of POST /build.
type BuildOptions struct {
	Dockerfile string
	Tags       []string
	Target     string
	NoCache    bool
	Pull       bool
	Quiet      bool
	BuildArgs  map[string]*string
	Labels     map[string]string
	Platform   string
	Network    string // networking mode for RUN containers
	// ContextDir is the absolute path of the context directory, which a
	// berth daemon on this host copies itself (the "contextdir" feature):
	// ImageBuild then sends no tarball.
	ContextDir string
}

// ImageBuild sends the build context tarball (plain or gzip'd) and copies
// the build's output text to out as it arrives. It returns the image ID;
// a failed step is returned as an error with the daemon's message.
func (c *Client) ImageBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions, out io.Writer) (string, error) {
	q := url.Values{"rm": {"1"}, "forcerm": {"1"}}
	if opts.Dockerfile != "" {
		q.Set("dockerfile", opts.Dockerfile)
	}
	for _, t := range opts.Tags {
		q.Add("t", t)
	}
	if opts.Target != "" {
		q.Set("target", opts.Target)
	}
	if opts.NoCache {
		q.Set("nocache", "1")
	}
	if opts.Pull {
		q.Set("pull", "1")
	}
	if opts.Quiet {
		q.Set("q", "1")
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	if opts.Network != "" {
		q.Set("networkmode", opts.Network)
	}
	if len(opts.BuildArgs) > 0 {
		b, _ := json.Marshal(opts.BuildArgs)
		q.Set("buildargs", string(b))
	}
	if len(opts.Labels) > 0 {
		b, _ := json.Marshal(opts.Labels)
		q.Set("labels", string(b))
	}
	if opts.ContextDir != "" {
		q.Set("contextdir", opts.ContextDir)
		buildContext = http.NoBody
	}
	resp, err := c.doRaw(ctx, http.MethodPost, "/build", q, buildContext, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var id string
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			jsonstream.Message
			ErrorText string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				if id == "" {
					return "", errors.New("build: the daemon ended the stream without an image ID")
				}
				return id, nil
			}
			return "", fmt.Errorf("read build output: %w", err)
		}
		switch {
		case m.Error != nil:
			return "", errors.New(m.Error.Message)
		case m.ErrorText != "":
			return "", errors.New(m.ErrorText)
		case m.Aux != nil:
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		case m.Stream != "" && out != nil && !opts.Quiet:
			if _, err := io.WriteString(out, m.Stream); err != nil {
				return "", err
			}
		}
	}
}
