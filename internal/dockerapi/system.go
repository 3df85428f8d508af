package dockerapi

import (
	"net/http"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/moby/moby/api/types/system"

	"github.com/berth/berth/api"
	"github.com/berth/berth/internal/version"
)

func (s *Server) routeSystem() {
	s.handle("GET /_ping", s.ping)
	s.handle("HEAD /_ping", s.ping)
	s.handle("GET /version", s.version)
}

// features are what berth's own CLI may use beyond Docker's API.
const features = "contextdir"

// ping answers "OK" with the headers clients negotiate from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, VersionInfo())
}

// VersionInfo is what GET /version answers for this daemon.
func VersionInfo() system.VersionResponse {
	kernel := ""
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	commit := version.GitCommit()
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       version.Version,
		APIVersion:    api.MaxVersion,
		MinAPIVersion: api.MinVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GitCommit:     commit,
		GoVersion:     runtime.Version(),
		KernelVersion: kernel,
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: version.Version,
			Details: map[string]string{
				"ApiVersion":    api.MaxVersion,
				"MinAPIVersion": api.MinVersion,
				"GitCommit":     commit,
				"GoVersion":     runtime.Version(),
				"Os":            runtime.GOOS,
				"Arch":          runtime.GOARCH,
				"KernelVersion": kernel,
				"Experimental":  "false",
			},
		}},
	}
}
