package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// ExecCreate registers a command to run in a running container and
// returns the exec's id.
func (c *Client) ExecCreate(ctx context.Context, containerID string, req container.ExecCreateRequest) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(containerID)+"/exec", nil, req, true)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out container.ExecCreateResponse
	return out.ID, json.NewDecoder(resp.Body).Decode(&out)
}

// ExecStartDetached runs an exec without attaching to it.
func (c *Client) ExecStartDetached(ctx context.Context, id string) error {
	return c.discard(c.do(ctx, http.MethodPost, "/exec/"+url.PathEscape(id)+"/start", nil,
		container.ExecStartRequest{Detach: true}, true))
}

// ExecAttach runs an exec attached: the connection carries its output
// (raw with a TTY, multiplexed otherwise) and takes its stdin;
// it ends when the process exits. ExecInspect then has its exit code.
func (c *Client) ExecAttach(ctx context.Context, id string, req container.ExecStartRequest) (HijackedConn, error) {
	return c.hijack(ctx, "/exec/"+url.PathEscape(id)+"/start", nil, req)
}

// ExecResize sets a running exec's terminal size.
func (c *Client) ExecResize(ctx context.Context, id string, height, width uint16) error {
	q := url.Values{"h": {strconv.Itoa(int(height))}, "w": {strconv.Itoa(int(width))}}
	return c.discard(c.do(ctx, http.MethodPost, "/exec/"+url.PathEscape(id)+"/resize", q, nil, true))
}

// ExecInspect reports an exec: running, its pid, and its exit code once
// it has exited.
func (c *Client) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	var out container.ExecInspectResponse
	return out, c.getJSON(ctx, "/exec/"+url.PathEscape(id)+"/json", nil, &out)
}
