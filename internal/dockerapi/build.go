package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth/berth/internal/build"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
)

// BuildBackend builds images from a context tarball (POST /build).
type BuildBackend interface {
	Build(ctx context.Context, contextTar io.Reader, opts build.Options, out io.Writer) (*build.Result, error)
}

func (s *Server) routeBuild(b BuildBackend) {
	s.handle("POST /build", func(w http.ResponseWriter, r *http.Request) error { return postBuild(b, w, r) })
	s.handle("POST /build/prune", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": []string{}, "SpaceReclaimed": 0})
		return nil
	})
}

// streamOut turns the builder's text into {"stream": "..."} messages.
type streamOut struct{ p *progressWriter }

func (o streamOut) Write(b []byte) (int, error) {
	if err := o.p.Send(jsonstream.Message{Stream: string(b)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func postBuild(b BuildBackend, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if v := q.Get("version"); v == "2" {
		return errdefs.NotImplemented(fmt.Errorf("BuildKit builds (version=2) are not supported: use the legacy builder (DOCKER_BUILDKIT=0)"))
	}
	if remote := q.Get("remote"); remote != "" {
		return errdefs.NotImplemented(fmt.Errorf("remote build contexts (%s) are not supported: berth builds have no network access", remote))
	}
	opts := build.Options{
		Dockerfile: q.Get("dockerfile"),
		Tags:       q["t"],
		Target:     q.Get("target"),
		NoCache:    boolValue(q.Get("nocache")),
		Pull:       boolValue(q.Get("pull")),
		Platform:   q.Get("platform"),
		Network:    q.Get("networkmode"),
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return errdefs.Invalidf("buildargs: %v", err)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return errdefs.Invalidf("labels: %v", err)
		}
	}
	if opts.Platform != "" {
		if _, err := image.ParsePlatform(opts.Platform); err != nil {
			return errdefs.Invalidf("platform: %v", err)
		}
	}
	// berth's CLI on the daemon's host names its context directory
	// instead of sending it (docs/decisions/0096).
	if dir := q.Get("contextdir"); dir != "" {
		root, err := openClientDir(r, "contextdir", dir)
		if err != nil {
			return err
		}
		defer root.Close()
		opts.ContextDir = root
	}
	quiet := boolValue(q.Get("q"))
	p := newProgressWriter(w)
	var out io.Writer = streamOut{p}
	if quiet {
		out = io.Discard
	}
	res, err := b.Build(r.Context(), r.Body, opts, out)
	if err != nil {
		return p.Fail(err)
	}
	aux, _ := json.Marshal(map[string]string{"ID": res.ID})
	raw := json.RawMessage(aux)
	if err := p.Send(jsonstream.Message{Aux: &raw}); err != nil {
		return nil
	}
	if quiet {
		return p.Send(jsonstream.Message{Stream: res.ID + "\n"})
	}
	_ = p.Send(jsonstream.Message{Stream: "Successfully built " + image.ShortID(digest.Digest(res.ID)) + "\n"})
	for _, t := range res.Tags {
		if ref, err := image.ParseReference(t); err == nil {
			t = image.FamiliarString(ref)
		}
		_ = p.Send(jsonstream.Message{Stream: "Successfully tagged " + t + "\n"})
	}
	return nil
}
