package dockerapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
)

// ExecBackend runs commands in running containers (the container service).
type ExecBackend interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, id string, detach bool, consoleSize *[2]uint) (net.Conn, *bufio.Reader, error)
	ExecResize(ctx context.Context, id string, height, width uint16) error
	ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error)
}

func (s *Server) routeExec(b ExecBackend) {
	s.handle("POST /containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) error {
		var req container.ExecCreateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		id, err := b.ExecCreate(r.Context(), r.PathValue("id"), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
	})
	s.handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		var req container.ExecStartRequest
		if r.ContentLength != 0 {
			if err := decodeBody(r, &req); err != nil {
				return err
			}
		}
		id := r.PathValue("id")
		// The process must outlive the request's context when detached,
		// and an attached one ends with its stream.
		ctx := context.WithoutCancel(r.Context())
		if req.Detach {
			if _, _, err := b.ExecStart(ctx, id, true, req.ConsoleSize); err != nil {
				return err
			}
			w.WriteHeader(http.StatusOK)
			return nil
		}
		inspect, err := b.ExecInspect(r.Context(), id)
		if err != nil {
			return err
		}
		upstream, rd, err := b.ExecStart(ctx, id, false, req.ConsoleSize)
		if err != nil {
			return err
		}
		defer upstream.Close()
		tty := inspect.ProcessConfig != nil && inspect.ProcessConfig.Tty
		client, rw, err := hijack(w, r, !tty)
		if err != nil {
			return err
		}
		defer client.Close()
		if inspect.OpenStdin {
			go func() {
				io.Copy(upstream, rw.Reader)
				if cw, ok := upstream.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}()
		} else {
			go io.Copy(io.Discard, rw.Reader)
		}
		io.Copy(client, rd)
		return nil
	})
	s.handle("POST /exec/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
		wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
		if err1 != nil || err2 != nil {
			return errdefs.Invalidf("resize: h and w must be numbers from 0 to 65535")
		}
		if err := b.ExecResize(r.Context(), r.PathValue("id"), uint16(h), uint16(wd)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.ExecInspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, resp)
	})
}
