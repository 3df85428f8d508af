package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth/berth/internal/errdefs"
)

// Client is the daemon's side of the monitor protocol.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the monitor listening on socket. It does
// not connect until the first call.
func NewClient(socket string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	return &Client{socket: socket, http: &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}}}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Ping reports whether a monitor answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.List(ctx)
	return err
}

// Create asks the monitor to create a task.
func (c *Client) Create(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	var resp CreateResponse
	err := c.call(ctx, http.MethodPost, "/tasks", req, &resp)
	return resp, err
}

// Start lets a created task exec its process.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/tasks/"+url.PathEscape(id)+"/start", nil, nil)
}

// Kill signals a task.
func (c *Client) Kill(ctx context.Context, id string, sig int, all bool) error {
	return c.call(ctx, http.MethodPost, "/tasks/"+url.PathEscape(id)+"/kill", KillRequest{Signal: sig, All: all}, nil)
}

// Resize sets a TTY task's terminal size.
func (c *Client) Resize(ctx context.Context, id string, height, width uint16) error {
	return c.call(ctx, http.MethodPost, "/tasks/"+url.PathEscape(id)+"/resize", ResizeRequest{Height: height, Width: width}, nil)
}

// Delete forgets an exited task (force: kill it first).
func (c *Client) Delete(ctx context.Context, id string, force bool) error {
	path := "/tasks/" + url.PathEscape(id)
	if force {
		path += "?force=1"
	}
	return c.call(ctx, http.MethodDelete, path, nil, nil)
}

// List returns every task the monitor supervises.
func (c *Client) List(ctx context.Context) ([]TaskState, error) {
	var out []TaskState
	err := c.call(ctx, http.MethodGet, "/tasks", nil, &out)
	return out, err
}

// Events streams task state changes until ctx ends or the monitor goes
// away; the channel is then closed (the caller reconciles with List).
func (c *Client) Events(ctx context.Context) (<-chan TaskState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://monitor/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unavailable(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	ch := make(chan TaskState, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var s TaskState
			if err := dec.Decode(&s); err != nil {
				return
			}
			select {
			case ch <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Attach connects to a task's stdio: the returned connection carries its
// output (raw for a TTY, multiplexed otherwise) and, with stdin, takes
// what is written to it. The caller closes it.
func (c *Client) Attach(ctx context.Context, id string, stdin, stdout, stderr bool) (net.Conn, *bufio.Reader, error) {
	q := url.Values{}
	for k, on := range map[string]bool{"stdin": stdin, "stdout": stdout, "stderr": stderr} {
		if on {
			q.Set(k, "1")
		}
	}
	return c.hijack(ctx, "/tasks/"+url.PathEscape(id)+"/attach?"+q.Encode(), nil)
}

// hijack sends a POST to path, with body if not nil, and returns the
// connection once the monitor has switched protocols.
func (c *Client) hijack(ctx context.Context, path string, body []byte) (net.Conn, *bufio.Reader, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, nil, c.unavailable(err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://monitor"+path, rd)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		return nil, nil, decodeError(resp)
	}
	return conn, br, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://monitor"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decode monitor response: %w", err)
		}
	}
	return nil
}

func (c *Client) unavailable(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errdefs.Unavailable(fmt.Errorf("monitor at %s is not running: %w", c.socket, err))
	}
	return err
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var m struct{ Message string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	return errdefs.FromHTTPStatus(resp.StatusCode, errors.New(msg))
}
