// Package client is the Go client of the Docker Engine API as berth serves
// it. berth's CLI, compose and web UI reach the daemon only through it, so
// whatever they do, any Docker client can do too.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/system"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/errdefs"
)

// Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	host   string // as given: unix:///path or tcp://host:port
	base   string // http://... URL prefix requests are made against
	http   *http.Client
	dialer func(ctx context.Context) (net.Conn, error)

	mu       sync.Mutex
	version  string   // negotiated API version; "" until the first request
	features []string // what the daemon's /_ping says it does beyond Docker's API
}

// HostFromEnv returns the daemon address to use when -H was not given:
// BERTH_HOST, then DOCKER_HOST, then the default socket.
func HostFromEnv() string {
	for _, k := range []string{"BERTH_HOST", "DOCKER_HOST"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return api.DefaultHost
}

// New returns a client of the daemon at host (unix:///path or
// tcp://host:port). It does not connect until the first request.
func New(host string) (*Client, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return nil, errdefs.Invalidf("daemon host %q: want unix:///path or tcp://host:port", host)
	}
	c := &Client{host: host}
	switch proto {
	case "unix":
		c.base = "http://berth"
		c.dialer = func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}
	case "tcp", "http":
		c.base = "http://" + addr
		c.dialer = func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	default:
		return nil, errdefs.Invalidf("daemon host %q: unsupported protocol %q", host, proto)
	}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dialer(ctx) },
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}}
	return c, nil
}

// Host returns the address the client was made for.
func (c *Client) Host() string { return c.host }

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// PingResult is what GET /_ping tells about the daemon.
type PingResult struct {
	APIVersion     string
	OSType         string
	BuilderVersion string
	Features       []string // Berth-Features: berth's own additions (a berth daemon only)
}

// Ping checks the daemon answers, and tells its API version.
func (c *Client) Ping(ctx context.Context) (PingResult, error) {
	resp, err := c.do(ctx, http.MethodGet, "/_ping", nil, nil, false)
	if err != nil {
		return PingResult{}, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return PingResult{
		APIVersion:     resp.Header.Get("Api-Version"),
		OSType:         resp.Header.Get("Ostype"),
		BuilderVersion: resp.Header.Get("Builder-Version"),
		Features:       parseFeatures(resp.Header),
	}, nil
}

// APIVersion returns the API version the client speaks with the daemon,
// negotiating it on first use: the lower of the daemon's and api.MaxVersion.
func (c *Client) APIVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	p, err := c.Ping(ctx)
	if err != nil {
		return "", err
	}
	v = api.MaxVersion
	if p.APIVersion != "" && api.CompareVersions(p.APIVersion, v) < 0 {
		v = p.APIVersion
	}
	c.mu.Lock()
	c.version, c.features = v, p.Features
	c.mu.Unlock()
	return v, nil
}

// HasFeature tells whether the daemon is a berth daemon that does name
// (see PingResult.Features), negotiating the API version if not yet done.
func (c *Client) HasFeature(ctx context.Context, name string) bool {
	if _, err := c.APIVersion(ctx); err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.features, name)
}

// Local tells whether the daemon is on this host's unix socket.
func (c *Client) Local() bool { return strings.HasPrefix(c.host, "unix://") }

// ServerVersion returns GET /version.
func (c *Client) ServerVersion(ctx context.Context) (system.VersionResponse, error) {
	var v system.VersionResponse
	err := c.getJSON(ctx, "/version", nil, &v)
	return v, err
}

// getJSON GETs path under the negotiated version and decodes the body.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, query, nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s response: %w", path, err)
	}
	return nil
}

// do sends a request; versioned requests carry the negotiated /vX.Y prefix.
// A non-2xx answer becomes an error of the matching errdefs class, carrying
// the daemon's message.
//
// The first versioned request does not ask /_ping first: it goes out at
// api.MaxVersion and the version and features are learnt from the
// answer's headers, which a berth daemon (and Docker) sets on every
// response. A daemon older than the client refuses it as too new, having
// done nothing, and only then is the version negotiated and the request
// sent again. That saves a round trip in every CLI command.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, versioned bool) (*http.Response, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	if !versioned {
		return c.send(ctx, method, path, query, b, body != nil)
	}
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v == "" {
		resp, err := c.send(ctx, method, "/v"+api.MaxVersion+path, query, b, body != nil)
		if err == nil {
			c.learn(resp.Header)
			return resp, nil
		}
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "is too new") {
			return nil, err
		}
		if v, err = c.APIVersion(ctx); err != nil {
			return nil, err
		}
	}
	return c.send(ctx, method, "/v"+v+path, query, b, body != nil)
}

// learn takes the API version and features from a daemon's answer to a
// request made at api.MaxVersion, unless they are known already.
func (c *Client) learn(h http.Header) {
	v := api.MaxVersion
	if dv := h.Get("Api-Version"); dv != "" && api.CompareVersions(dv, v) < 0 {
		v = dv
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == "" {
		c.version, c.features = v, parseFeatures(h)
	}
}

func parseFeatures(h http.Header) []string {
	return strings.Fields(strings.ReplaceAll(h.Get("Berth-Features"), ",", " "))
}

// send makes one request with body b (JSON when hasBody).
func (c *Client) send(ctx context.Context, method, path string, query url.Values, b []byte, hasBody bool) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.connectError(err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, responseError(resp)
}

// connectError says what to do when the daemon cannot be reached.
func (c *Client) connectError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errdefs.Unavailable(fmt.Errorf("cannot connect to the berth daemon at %s: is it running? Start it with `berth daemon` (or `make start`), or point -H / BERTH_HOST at a running one: %w", c.host, err))
	}
	return err
}

// responseError turns an error response into an error of the right class.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var m struct{ Message string }
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	err := errdefs.FromHTTPStatus(resp.StatusCode, errors.New(msg))
	if errdefs.ClassOf(err) == nil {
		err = fmt.Errorf("daemon error (%d): %w", resp.StatusCode, err)
	}
	return err
}
