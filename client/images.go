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

// ImageLoad loads an image archive (docker-archive or OCI layout tar, as
// `docker save` writes) and returns the daemon's messages, e.g. "Loaded
// image: busybox:latest". An error the daemon reports in the stream, after
// its 200, is returned as an error.
func (c *Client) ImageLoad(ctx context.Context, archive io.Reader) ([]string, error) {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v"+v+"/images/load?"+url.Values{"quiet": {"1"}}.Encode(), archive)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.connectError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
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
