package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// ContainerCreate creates a container named name ("" for a generated name).
func (c *Client) ContainerCreate(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out container.CreateResponse
	resp, err := c.do(ctx, http.MethodPost, "/containers/create", q, req, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ContainerStart starts a container.
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, true))
}

// ContainerStop stops a container: signal ("" for its stop signal), then
// SIGKILL after timeout seconds (nil for its default).
func (c *Client) ContainerStop(ctx context.Context, id string, timeout *int, signal string) error {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/stop", q, nil, true))
}

// ContainerKill sends a signal ("" for SIGKILL).
func (c *Client) ContainerKill(ctx context.Context, id, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/kill", q, nil, true))
}

// ContainerRemove removes a container.
func (c *Client) ContainerRemove(ctx context.Context, id string, force, volumes bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	if volumes {
		q.Set("v", "1")
	}
	return c.discard(c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, true))
}

// ContainerListOptions are `ps` flags.
type ContainerListOptions struct {
	All     bool
	Limit   int
	Filters map[string][]string
}

// ContainerList lists containers.
func (c *Client) ContainerList(ctx context.Context, opts ContainerListOptions) ([]container.Summary, error) {
	q := url.Values{}
	if opts.All {
		q.Set("all", "1")
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	fq, err := filterQuery(opts.Filters)
	if err != nil {
		return nil, err
	}
	if f := fq.Get("filters"); f != "" {
		q.Set("filters", f)
	}
	var out []container.Summary
	return out, c.getJSON(ctx, "/containers/json", q, &out)
}

// ContainerInspect returns a container's details.
func (c *Client) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	var out container.InspectResponse
	return out, c.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", nil, &out)
}

// ContainerWait waits for condition ("not-running", "next-exit",
// "removed"). It returns once the daemon has registered the wait, so a
// container started afterwards cannot exit unseen; the exit code arrives
// on the channel.
func (c *Client) ContainerWait(ctx context.Context, id, condition string) (<-chan container.WaitResponse, <-chan error) {
	results, errs := make(chan container.WaitResponse, 1), make(chan error, 1)
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	resp, err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/wait", q, nil, true)
	if err != nil {
		errs <- err
		return results, errs
	}
	go func() {
		defer resp.Body.Close()
		var w container.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			errs <- fmt.Errorf("waiting for the container: %w", err)
			return
		}
		results <- w
	}()
	return results, errs
}

// LogsOptions are `logs` flags.
type LogsOptions struct {
	Stdout, Stderr, Follow, Timestamps bool
	Since, Until, Tail                 string
}

// ContainerLogs streams a container's log: multiplexed (see stdcopy) unless
// the container has a TTY. The caller closes it.
func (c *Client) ContainerLogs(ctx context.Context, id string, opts LogsOptions) (io.ReadCloser, error) {
	q := url.Values{}
	for k, on := range map[string]bool{"stdout": opts.Stdout, "stderr": opts.Stderr, "follow": opts.Follow, "timestamps": opts.Timestamps} {
		if on {
			q.Set(k, "1")
		}
	}
	for k, v := range map[string]string{"since": opts.Since, "until": opts.Until, "tail": opts.Tail} {
		if v != "" {
			q.Set(k, v)
		}
	}
	resp, err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs", q, nil, true)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// HijackedConn is an attach or exec stream: read the output from Reader,
// write input to Conn, CloseWrite when input ends.
type HijackedConn struct {
	Conn   net.Conn
	Reader *bufio.Reader
}

// CloseWrite signals the end of input.
func (h HijackedConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the stream.
func (h HijackedConn) Close() error { return h.Conn.Close() }

// AttachOptions choose the streams to attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// ContainerAttach attaches to a container's stdio. For a container not yet
// started it returns at once; output flows once it starts.
func (c *Client) ContainerAttach(ctx context.Context, id string, opts AttachOptions) (HijackedConn, error) {
	q := url.Values{"stream": {"1"}}
	for k, on := range map[string]bool{"stdin": opts.Stdin, "stdout": opts.Stdout, "stderr": opts.Stderr} {
		if on {
			q.Set(k, "1")
		}
	}
	return c.hijack(ctx, "/containers/"+url.PathEscape(id)+"/attach", q, nil)
}

// hijack POSTs to path (with body as JSON, when not nil) with an Upgrade:
// tcp request and returns the raw connection once the daemon has answered
// 101 (or 200).
func (c *Client) hijack(ctx context.Context, path string, q url.Values, body any) (HijackedConn, error) {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return HijackedConn{}, err
	}
	conn, err := c.dialer(ctx)
	if err != nil {
		return HijackedConn{}, c.connectError(err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			conn.Close()
			return HijackedConn{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(http.MethodPost, c.base+"/v"+v+path+"?"+q.Encode(), rd)
	if err != nil {
		conn.Close()
		return HijackedConn{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return HijackedConn{}, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return HijackedConn{}, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return HijackedConn{}, responseError(resp)
	}
	return HijackedConn{Conn: conn, Reader: br}, nil
}

// discard closes a response body when the call succeeded.
func (c *Client) discard(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// ContainerResize sets a TTY container's terminal size.
func (c *Client) ContainerResize(ctx context.Context, id string, height, width uint16) error {
	q := url.Values{"h": {strconv.Itoa(int(height))}, "w": {strconv.Itoa(int(width))}}
	return c.discard(c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/resize", q, nil, true))
}
