package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/logs"
)

// ContainerBackend is what the container routes need.
type ContainerBackend interface {
	Create(ctx context.Context, req berthc.CreateRequest) (*berthc.Container, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *int, signal string) error
	Restart(ctx context.Context, ref string, timeout *int, signal string) error
	Kill(ctx context.Context, ref, signal string) error
	Wait(ctx context.Context, ref string, cond berthc.WaitCondition) (<-chan berthc.WaitResult, error)
	Remove(ctx context.Context, ref string, opts berthc.RemoveOptions) error
	List(ctx context.Context, opts berthc.ListOptions) ([]container.Summary, error)
	Inspect(ctx context.Context, ref string) (container.InspectResponse, error)
	Get(ref string) (*berthc.Container, error)
	Logs(ctx context.Context, ref string, opts berthc.LogsOptions, emit func(logs.Entry) error) error
	Attach(ctx context.Context, ref string, stdin, stdout, stderr bool) (net.Conn, interface{ Read([]byte) (int, error) }, error)
	Resize(ctx context.Context, ref string, height, width uint16) error
	Prune(ctx context.Context, filters map[string][]string, parseTime func(string) (time.Time, error)) (container.PruneReport, error)
	Rename(ctx context.Context, ref, newName string) error
	UsingImage(imageID string) (containerID string, used bool)
}

func (s *Server) routeContainers(b ContainerBackend) {
	s.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) error {
		var req container.CreateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if req.Config == nil {
			return errdefs.Invalidf("config cannot be empty in order to create a container")
		}
		c, err := b.Create(r.Context(), berthc.CreateRequest{Name: r.URL.Query().Get("name"), Config: req.Config, HostConfig: req.HostConfig, Networking: req.NetworkingConfig})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: []string{}})
	})
	s.handle("GET /containers/json", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, berthc.PSFilters()...)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		list, err := b.List(r.Context(), berthc.ListOptions{All: boolValue(q.Get("all")), Limit: limit, Filters: f})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, list)
	})
	s.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		c, err := b.Inspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, withLegacyNetworkSettings(c))
	})
	s.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Start(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/stop", func(w http.ResponseWriter, r *http.Request) error {
		timeout, err := intParam(r, "t")
		if err != nil {
			return err
		}
		if err := b.Stop(r.Context(), r.PathValue("id"), timeout, r.URL.Query().Get("signal")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/restart", func(w http.ResponseWriter, r *http.Request) error {
		timeout, err := intParam(r, "t")
		if err != nil {
			return err
		}
		if err := b.Restart(r.Context(), r.PathValue("id"), timeout, r.URL.Query().Get("signal")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/kill", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Kill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) error {
		ch, err := b.Wait(r.Context(), r.PathValue("id"), berthc.WaitCondition(r.URL.Query().Get("condition")))
		if err != nil {
			return err
		}
		// The waiter is registered: say so at once, as Docker does. `docker
		// run` starts the container only once it has these headers.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case res := <-ch:
			resp := container.WaitResponse{StatusCode: int64(res.ExitCode)}
			if res.Error != "" {
				resp.Error = &container.WaitExitError{Message: res.Error}
			}
			return json.NewEncoder(w).Encode(resp)
		case <-r.Context().Done():
			return nil
		}
	})
	s.handle("DELETE /containers/{id}", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		if boolValue(q.Get("link")) {
			return errdefs.NotImplemented(errors.New("removing links is not supported"))
		}
		if err := b.Remove(r.Context(), r.PathValue("id"), berthc.RemoveOptions{Force: boolValue(q.Get("force")), Volumes: boolValue(q.Get("v"))}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
		wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
		if err1 != nil || err2 != nil {
			return errdefs.Invalidf("resize: h and w must be numbers from 0 to 65535")
		}
		if err := b.Resize(r.Context(), r.PathValue("id"), uint16(h), uint16(wd)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /containers/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, berthc.PruneFilters...)
		if err != nil {
			return err
		}
		report, err := b.Prune(r.Context(), f, parseUntil)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, report)
	})
	s.handle("POST /containers/{id}/rename", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Rename(r.Context(), r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) error {
		return s.containerLogs(w, r, b)
	})
	s.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) error {
		return s.containerAttach(w, r, b)
	})
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, b ContainerBackend) error {
	q := r.URL.Query()
	c, err := b.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	opts := berthc.LogsOptions{Stdout: boolValue(q.Get("stdout")), Stderr: boolValue(q.Get("stderr")), Follow: boolValue(q.Get("follow")), Tail: -1}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.Invalidf("Bad parameters: you must choose at least one stream")
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return errdefs.Invalidf("invalid tail %q: want a number or \"all\"", t)
		}
		opts.Tail = n
	}
	for key, dst := range map[string]*time.Time{"since": &opts.Since, "until": &opts.Until} {
		if v := q.Get(key); v != "" && v != "0" {
			t, err := parseTimestamp(v)
			if err != nil {
				return errdefs.Invalidf("invalid %s %q: %v", key, v, err)
			}
			*dst = t
		}
	}
	timestamps := boolValue(q.Get("timestamps"))
	tty := c.Config != nil && c.Config.Tty
	contentType := "application/vnd.docker.multiplexed-stream"
	if tty {
		contentType = "application/vnd.docker.raw-stream"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	stdout, stderr := newMuxWriters(w)
	if tty {
		stdout, stderr = w, w
	}
	var line []byte
	err = b.Logs(r.Context(), c.ID, opts, func(e logs.Entry) error {
		line = line[:0]
		if timestamps {
			line = e.Time.UTC().AppendFormat(line, time.RFC3339Nano)
			line = append(line, ' ')
		}
		line = append(line, e.Line...)
		out := stdout
		if e.Stream == "stderr" {
			out = stderr
		}
		if _, err := out.Write(line); err != nil {
			return err
		}
		if flusher != nil && opts.Follow {
			flusher.Flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		// The status is sent; a failure can only end the stream, as in Docker.
		s.logger.Warn("logs stream ended early", "container", c.ID, "err", err)
	}
	return nil
}

// containerAttach hijacks the client's connection and splices it to the
// container's stdio. For a container not yet started, the hijack is
// answered at once (the client starts the container only after it) and the
// splice begins when it starts.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, b ContainerBackend) error {
	q := r.URL.Query()
	c, err := b.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	if !boolValue(q.Get("stream")) && !boolValue(q.Get("logs")) {
		return errdefs.Invalidf("Bad parameters: you must choose at least one of stream or logs")
	}
	tty := c.Config != nil && c.Config.Tty
	client, rw, err := hijack(w, r, !tty)
	if err != nil {
		return err
	}
	defer client.Close()
	if !boolValue(q.Get("stream")) {
		return nil
	}
	stdin := boolValue(q.Get("stdin"))
	// The docker CLI half-closes its side at once when it sends no stdin,
	// so an EOF from the client says nothing about whether it is still
	// there: only a failed write does. The wait for a container's start
	// ends with the daemon.
	ctx := context.WithoutCancel(r.Context())
	if !stdin {
		go io.Copy(io.Discard, rw.Reader)
	}
	upstream, rd, err := b.Attach(ctx, c.ID, stdin, boolValue(q.Get("stdout")), boolValue(q.Get("stderr")))
	if err != nil {
		return nil // the client sees the stream end
	}
	defer upstream.Close()
	if stdin {
		go func() {
			io.Copy(upstream, rw.Reader)
			if cw, ok := upstream.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	io.Copy(client, rd)
	return nil
}

func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errdefs.Invalidf("unsupported Content-Type header (%s): must be 'application/json'", ct)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.Invalidf("invalid JSON: got EOF while reading request body")
		}
		return errdefs.Invalidf("invalid JSON: %v", err)
	}
	return nil
}

// boolValue reads Docker's boolean query values: 1/true/yes and so on.
func boolValue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

func intParam(r *http.Request, key string) (*int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.Invalidf("invalid value for %s: %q is not a number", key, v)
	}
	return &n, nil
}

// parseUntil reads prune's until filter: a timestamp, or a duration ago
// ("24h").
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	return parseTimestamp(v)
}

// parseTimestamp reads the since/until forms the docker CLI sends:
// "1700000000", "1700000000.123456789", or RFC 3339.
func parseTimestamp(v string) (time.Time, error) {
	if sec, frac, ok := strings.Cut(v, "."); ok || !strings.ContainsAny(v, "-:T") {
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		var ns int64
		if ok {
			frac = (frac + "000000000")[:9]
			if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
				return time.Time{}, err
			}
		}
		return time.Unix(s, ns), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}
