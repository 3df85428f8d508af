package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
)

// ImageLoad loads an image archive (docker-archive or OCI layout tar, as
// `docker save` writes) and returns the daemon's messages, e.g. "Loaded
// image: busybox:latest". An error the daemon reports in the stream, after
// its 200, is returned as an error.
func (c *Client) ImageLoad(ctx context.Context, archive io.Reader) ([]string, error) {
	resp, err := c.doRaw(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, archive, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readProgress(resp.Body)
}

// readProgress reads a JSON progress stream to its end, collecting the
// status and stream lines, and returns the first error it reports.
func readProgress(r io.Reader) ([]string, error) {
	var lines []string
	dec := json.NewDecoder(r)
	for {
		var m struct {
			jsonstream.Message
			ErrorText string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return lines, nil
			}
			return lines, fmt.Errorf("read progress: %w", err)
		}
		switch {
		case m.Error != nil:
			return lines, errors.New(m.Error.Message)
		case m.ErrorText != "":
			return lines, errors.New(m.ErrorText)
		case m.Stream != "":
			lines = append(lines, m.Stream)
		case m.Status != "":
			lines = append(lines, m.Status)
		}
	}
}

// ImportOptions tune ImageImport (`docker import`).
type ImportOptions struct {
	Ref      string   // repo[:tag] to name the image, "" for none
	Message  string   // history comment
	Changes  []string // Dockerfile instructions (CMD, ENV, ...)
	Platform string   // os[/arch[/variant]], "" for the daemon's
}

// ImageImport makes a one-layer image from a root filesystem tarball
// (plain or compressed) and returns its ID.
func (c *Client) ImageImport(ctx context.Context, rootfs io.Reader, opts ImportOptions) (string, error) {
	q := url.Values{"fromSrc": {"-"}}
	if opts.Ref != "" {
		q.Set("repo", opts.Ref)
	}
	if opts.Message != "" {
		q.Set("message", opts.Message)
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	resp, err := c.doRaw(ctx, http.MethodPost, "/images/create", q, rootfs, "application/x-tar")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	lines, err := readProgress(resp.Body)
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "sha256:") {
			return strings.TrimSpace(l), nil
		}
	}
	return "", errors.New("import: the daemon sent no image ID")
}
