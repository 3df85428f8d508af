package dockerapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
)

// ContainerExtrasBackend is what the routes of the less common container
// verbs need: archive (docker cp), export, changes, commit, stats, top,
// pause, unpause, update, and the containers' part of /system/df. The
// server serves them when its container backend has these methods.
type ContainerExtrasBackend interface {
	StatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ArchivePath(ctx context.Context, ref, path string, start func(container.PathStat) (io.Writer, error)) error
	ExtractArchive(ctx context.Context, ref, path string, r io.Reader, opts berthc.ExtractOptions) error
	Export(ctx context.Context, ref string, w io.Writer) error
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
	Commit(ctx context.Context, ref string, opts berthc.CommitOptions) (string, error)
	Stats(ctx context.Context, ref string) (container.StatsResponse, error)
	Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error)
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Update(ctx context.Context, ref string, u container.UpdateConfig) ([]string, error)
	DiskUsage(ctx context.Context) ([]container.Summary, error)
	Get(ref string) (*berthc.Container, error)
}

// pathStatHeader carries a path's stat in archive responses.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func encodePathStat(ps container.PathStat) (string, error) {
	b, err := json.Marshal(ps)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func archivePathParam(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Invalidf("bad parameter: path cannot be empty")
	}
	return p, nil
}

func (s *Server) routeContainersMore(b ContainerExtrasBackend) {
	s.handle("HEAD /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePathParam(r)
		if err != nil {
			return err
		}
		ps, err := b.StatPath(r.Context(), r.PathValue("id"), p)
		if err != nil {
			return err
		}
		h, err := encodePathStat(ps)
		if err != nil {
			return err
		}
		w.Header().Set(pathStatHeader, h)
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("GET /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePathParam(r)
		if err != nil {
			return err
		}
		return b.ArchivePath(r.Context(), r.PathValue("id"), p, func(ps container.PathStat) (io.Writer, error) {
			h, err := encodePathStat(ps)
			if err != nil {
				return nil, err
			}
			w.Header().Set(pathStatHeader, h)
			w.Header().Set("Content-Type", "application/x-tar")
			w.WriteHeader(http.StatusOK)
			return w, nil
		})
	})
	s.handle("PUT /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePathParam(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		opts := berthc.ExtractOptions{NoOverwriteDirNonDir: boolValue(q.Get("noOverwriteDirNonDir")), CopyUIDGID: boolValue(q.Get("copyUIDGID"))}
		if err := b.ExtractArchive(r.Context(), r.PathValue("id"), p, r.Body, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("GET /containers/{id}/export", func(w http.ResponseWriter, r *http.Request) error {
		if _, err := b.Get(r.PathValue("id")); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		ww := &lazyWriter{w: w}
		if err := b.Export(r.Context(), r.PathValue("id"), ww); err != nil {
			if ww.started {
				s.logger.Warn("export stream ended early", "container", r.PathValue("id"), "err", err)
				return nil
			}
			w.Header().Del("Content-Type")
			return err
		}
		if !ww.started {
			w.WriteHeader(http.StatusOK)
		}
		return nil
	})
	s.handle("GET /containers/{id}/changes", func(w http.ResponseWriter, r *http.Request) error {
		ch, err := b.Changes(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, ch)
	})
	s.handle("POST /commit", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var cfg *container.Config
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return err
		}
		if t := strings.TrimSpace(string(body)); t != "" && t != "null" {
			cfg = &container.Config{}
			if err := json.Unmarshal(body, cfg); err != nil {
				return errdefs.Invalidf("invalid JSON: %v", err)
			}
		}
		ref := q.Get("repo")
		if tag := q.Get("tag"); ref != "" && tag != "" {
			ref += ":" + tag
		} else if ref == "" && tag != "" {
			return errdefs.Invalidf("invalid reference: tag %q given without a repository", tag)
		}
		pause := true
		if v := q.Get("pause"); v != "" {
			pause = boolValue(v)
		}
		id, err := b.Commit(r.Context(), q.Get("container"), berthc.CommitOptions{
			Ref: ref, Comment: q.Get("comment"), Author: q.Get("author"), Changes: q["changes"], Config: cfg, Pause: pause,
		})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
	})
	s.handle("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) error {
		return s.containerStats(w, r, b)
	})
	s.handle("GET /containers/{id}/top", func(w http.ResponseWriter, r *http.Request) error {
		top, err := b.Top(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, top)
	})
	s.handle("POST /containers/{id}/pause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Pause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/unpause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Unpause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/update", func(w http.ResponseWriter, r *http.Request) error {
		var u container.UpdateConfig
		if err := decodeBody(r, &u); err != nil {
			return err
		}
		warnings, err := b.Update(r.Context(), r.PathValue("id"), u)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
	})
}

// lazyWriter sends the status line at the first write, so an error found
// before any output still gets Docker's error response.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// statsInterval is how often a stats stream samples, as Docker's.
const statsInterval = time.Second

// containerStats streams a sample a second (stream=true, the default), or
// answers one: with precpu filled from a sample a second earlier, or at
// once with one-shot=true.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, b ContainerExtrasBackend) error {
	q := r.URL.Query()
	stream := q.Get("stream") == "" || boolValue(q.Get("stream"))
	oneShot := boolValue(q.Get("one-shot"))
	if oneShot && stream {
		return errdefs.Invalidf("cannot have stream=true and one-shot=true")
	}
	id := r.PathValue("id")
	c, err := b.Get(id)
	if err != nil {
		return err
	}
	first, err := b.Stats(r.Context(), c.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	if !stream {
		if !oneShot && c.Running() {
			select {
			case <-time.After(statsInterval):
			case <-r.Context().Done():
				return nil
			}
			next, err := b.Stats(r.Context(), c.ID)
			if err == nil {
				next.PreCPUStats, next.PreRead = first.CPUStats, first.Read
				first = next
			}
		}
		return writeJSON(w, http.StatusOK, first)
	}
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	prev := container.StatsResponse{}
	cur := first
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(cur); err != nil {
			return nil
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return nil
		}
		c, err := b.Get(c.ID)
		if err != nil || !c.Running() {
			return nil
		}
		prev = cur
		if cur, err = b.Stats(r.Context(), c.ID); err != nil {
			if !errors.Is(err, errdefs.ErrConflict) {
				s.logger.Warn("stats stream ended", "container", c.ID, "err", err)
			}
			return nil
		}
	}
}
