// Package dockerapi serves the Docker Engine REST API: it routes requests,
// negotiates the API version, decodes requests, encodes responses and maps
// errors to Docker's status codes. It owns no container or image behaviour;
// each router names the small backend interface it needs.
package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/version"
)

// Config is what the API server is built from.
type Config struct {
	// Logger receives one line per failed request; nil means slog.Default().
	Logger *slog.Logger
	// DaemonID and DataRoot are shown by /info.
	DaemonID, DataRoot string
	// Containers serves /containers/...; nil leaves those routes out.
	Containers ContainerBackend
	// Events serves /events; nil leaves it out.
	Events *events.Bus
	// Volumes serves /volumes/...; nil leaves those routes out.
	Volumes VolumeBackend
	// Images serves /images/...; nil leaves those routes out.
	Images ImageBackend
	// Builder serves POST /build; nil leaves it out.
	Builder BuildBackend
	// Networks serves /networks/...; nil leaves those routes out.
	Networks NetworkBackend
	// InsecureRegistries are reached over plain HTTP (besides loopback).
	InsecureRegistries []string
	// RegistryMirrors are Docker Hub mirrors (validated URLs), tried in
	// order before the Hub itself for pulls.
	RegistryMirrors []string
}

// handlerFunc is an API handler: it writes a response, or returns an error
// that the server turns into Docker's error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Server is the Engine API as an http.Handler.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	logger *slog.Logger
}

// New returns the Engine API server.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux(), logger: cfg.Logger}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.routeSystem()
	s.routeInfo()
	if cfg.Events != nil {
		s.routeEvents(cfg.Events)
	}
	if cfg.Containers != nil {
		s.routeContainers(cfg.Containers)
		if x, ok := cfg.Containers.(ContainerExtrasBackend); ok {
			s.routeContainersMore(x) // containers_more.go
		}
		if x, ok := cfg.Containers.(ExecBackend); ok {
			s.routeExec(x) // exec.go
		}
	}
	s.routeDiskUsage() // system_df.go
	if cfg.Volumes != nil {
		s.routeVolumes(cfg.Volumes)
	}
	if cfg.Images != nil {
		s.routeImages(cfg.Images)
	}
	if cfg.Builder != nil {
		s.routeBuild(cfg.Builder)
	}
	if cfg.Networks != nil {
		s.routeNetworks(cfg.Networks)
	}
	return s
}

// handle registers h for pattern ("METHOD /path/{name}", without the
// optional /vX.Y prefix, which ServeHTTP strips).
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(r.Context(), w, r, err)
		}
	})
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+(?:\.[0-9]+)?)(/.*)$`)

type apiVersionKey struct{}

// APIVersion returns the API version the request was made with: the /vX.Y
// path prefix, or api.MaxVersion when the request had none.
func APIVersion(ctx context.Context) string {
	if v, ok := ctx.Value(apiVersionKey{}).(string); ok {
		return v
	}
	return api.MaxVersion
}

// ServeHTTP strips and checks the version prefix, sets the headers every
// Docker response carries, and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Api-Version", api.MaxVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "berth/"+version.Version+" (linux)")
	h.Set("Berth-Features", features) // on every answer: berth's client learns them from its first request

	v := api.MaxVersion
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		v = m[1]
		r.URL.Path = m[2]
		r.URL.RawPath = ""
	}
	ctx := log.With(context.WithValue(r.Context(), apiVersionKey{}, v), "method", r.Method, "path", r.URL.Path)
	r = r.WithContext(ctx)
	switch {
	case api.CompareVersions(v, api.MaxVersion) > 0:
		s.writeError(ctx, w, r, errdefs.Invalidf("client version %s is too new. Maximum supported API version is %s", v, api.MaxVersion))
		return
	case api.CompareVersions(v, api.MinVersion) < 0:
		s.writeError(ctx, w, r, errdefs.Invalidf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, api.MinVersion))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.writeError(ctx, w, r, errdefs.NotFound(errors.New("page not found")))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// writeError writes Docker's error body, {"message": "..."}.
func (s *Server) writeError(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	code := errdefs.HTTPStatus(err)
	if code >= 500 {
		log.From(ctx).Error("request failed", "status", code, "err", err)
	}
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, map[string]string{"message": err.Error()})
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}
