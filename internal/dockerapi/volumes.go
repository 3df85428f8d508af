package dockerapi

import (
	"context"
	"errors"
	"net/http"

	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/volume"
)

// VolumeBackend is what the volume routes need.
type VolumeBackend interface {
	Create(ctx context.Context, name, driver string, opts, labels map[string]string) (*volume.Volume, error)
	Get(name string) (*volume.Volume, error)
	List(ctx context.Context, filters map[string][]string) ([]*volume.Volume, error)
	Remove(ctx context.Context, name string, force bool) error
	Prune(ctx context.Context, filters map[string][]string) (apivolume.PruneReport, error)
	API(v *volume.Volume) apivolume.Volume
}

func (s *Server) routeVolumes(b VolumeBackend) {
	s.handle("GET /volumes", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, volume.ListFilters...)
		if err != nil {
			return err
		}
		vols, err := b.List(r.Context(), f)
		if err != nil {
			return err
		}
		resp := apivolume.ListResponse{Volumes: make([]apivolume.Volume, 0, len(vols)), Warnings: []string{}}
		for _, v := range vols {
			resp.Volumes = append(resp.Volumes, b.API(v))
		}
		return writeJSON(w, http.StatusOK, resp)
	})
	s.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) error {
		var req apivolume.CreateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if req.ClusterVolumeSpec != nil {
			return errdefs.NotImplemented(errors.New("cluster volumes need swarm mode, which berth does not have"))
		}
		v, err := b.Create(r.Context(), req.Name, req.Driver, req.DriverOpts, req.Labels)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, b.API(v))
	})
	s.handle("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.Get(r.PathValue("name"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, b.API(v))
	})
	s.handle("PUT /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplemented(errors.New("volume update is for cluster volumes, which need swarm mode"))
	})
	s.handle("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Remove(r.Context(), r.PathValue("name"), boolValue(r.URL.Query().Get("force"))); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /volumes/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, volume.PruneFilters...)
		if err != nil {
			return err
		}
		report, err := b.Prune(r.Context(), f)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, report)
	})
}
