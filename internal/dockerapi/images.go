package dockerapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth/berth/internal/errdefs"
	berthi "github.com/berth/berth/internal/image"
)

// ImageBackend is what the image routes need: the image store.
type ImageBackend interface {
	List(ctx context.Context) ([]*berthi.Image, error)
	Resolve(ctx context.Context, ref string) (*berthi.Image, string, error)
	Load(ctx context.Context, r io.Reader) ([]berthi.LoadResult, error)
	Save(ctx context.Context, w io.Writer, refs []string) error
	Tag(ctx context.Context, source, target string) error
	Delete(ctx context.Context, ref string, force bool, inUse berthi.InUseFunc) ([]berthi.DeleteItem, error)
	Prune(ctx context.Context, all bool, inUse berthi.InUseFunc) ([]berthi.DeleteItem, int64, error)
}

// inUse tells the image store which images containers use.
func (s *Server) inUse(id string) (string, bool) {
	if s.cfg.Containers == nil {
		return "", false
	}
	return s.cfg.Containers.UsingImage(id)
}

func (s *Server) routeImages(b ImageBackend) {
	s.handle("GET /images/json", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, "dangling", "label", "reference", "before", "since", "until")
		if err != nil {
			return err
		}
		imgs, err := b.List(r.Context())
		if err != nil {
			return err
		}
		all := boolValue(r.URL.Query().Get("all"))
		out := []image.Summary{}
		for _, img := range imgs {
			if !imageMatches(img, f) {
				continue
			}
			_ = all // berth keeps no intermediate images: all and not-all list the same
			out = append(out, imageSummary(img))
		}
		return writeJSON(w, http.StatusOK, out)
	})
	s.handle("GET /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		switch {
		case strings.HasSuffix(name, "/json"):
			img, _, err := b.Resolve(r.Context(), strings.TrimSuffix(name, "/json"))
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, imageInspect(img))
		case strings.HasSuffix(name, "/history"):
			img, _, err := b.Resolve(r.Context(), strings.TrimSuffix(name, "/history"))
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, imageHistory(img))
		case strings.HasSuffix(name, "/get"):
			return s.saveImages(w, r, b, []string{strings.TrimSuffix(name, "/get")})
		case name == "get":
			return s.saveImages(w, r, b, r.URL.Query()["names"])
		}
		return errdefs.NotFound(errors.New("page not found"))
	})
	s.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) error {
		results, err := b.Load(r.Context(), r.Body)
		if err != nil {
			return err
		}
		p := newProgressWriter(w)
		for _, res := range results {
			if len(res.Names) == 0 {
				p.Send(jsonstream.Message{Stream: "Loaded image ID: " + res.ID.String() + "\n"})
			}
			for _, n := range res.Names {
				p.Send(jsonstream.Message{Stream: "Loaded image: " + n + "\n"})
			}
		}
		return nil
	})
	s.handle("POST /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		switch {
		case strings.HasSuffix(name, "/tag"):
			q := r.URL.Query()
			target := q.Get("repo")
			if target == "" {
				return errdefs.Invalidf("repository name must have at least one component")
			}
			if t := q.Get("tag"); t != "" {
				target += ":" + t
			}
			if err := b.Tag(r.Context(), strings.TrimSuffix(name, "/tag"), target); err != nil {
				return err
			}
			w.WriteHeader(http.StatusCreated)
			return nil
		case name == "prune":
			f, err := parseFilters(r, "dangling", "label", "until")
			if err != nil {
				return err
			}
			all := len(f["dangling"]) > 0 && (f["dangling"][0] == "false" || f["dangling"][0] == "0")
			items, freed, err := b.Prune(r.Context(), all, s.inUse)
			if err != nil {
				return err
			}
			report := image.PruneReport{ImagesDeleted: deleteResponses(items), SpaceReclaimed: uint64(freed)}
			return writeJSON(w, http.StatusOK, report)
		case name == "create":
			if r.URL.Query().Has("fromSrc") {
				ib, ok := b.(ImportBackend)
				if !ok {
					return errdefs.NotImplemented(errors.New("import is not available"))
				}
				return s.importImage(w, r, ib)
			}
			rb, ok := b.(RegistryBackend)
			if !ok || r.URL.Query().Get("fromImage") == "" {
				return errdefs.Invalidf("image create needs fromImage (pull) or fromSrc (import)")
			}
			return s.pull(w, r, rb)
		case strings.HasSuffix(name, "/push"):
			rb, ok := b.(RegistryBackend)
			if !ok {
				return errdefs.NotImplemented(errors.New("push is not available"))
			}
			return s.push(w, r, strings.TrimSuffix(name, "/push"), rb)
		}
		return errdefs.NotFound(errors.New("page not found"))
	})
	s.handle("DELETE /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		items, err := b.Delete(r.Context(), r.PathValue("name"), boolValue(r.URL.Query().Get("force")), s.inUse)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, deleteResponses(items))
	})
}

func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, b ImageBackend, refs []string) error {
	if len(refs) == 0 {
		return errdefs.Invalidf("no image names given to save")
	}
	for _, ref := range refs {
		if _, _, err := b.Resolve(r.Context(), ref); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := b.Save(r.Context(), w, refs); err != nil {
		s.logger.Warn("image save ended early", "err", err)
	}
	return nil
}

func deleteResponses(items []berthi.DeleteItem) []image.DeleteResponse {
	out := make([]image.DeleteResponse, 0, len(items))
	for _, it := range items {
		out = append(out, image.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
	}
	return out
}

func imageMatches(img *berthi.Image, f Filters) bool {
	for _, d := range f["dangling"] {
		if (d == "true" || d == "1") != (len(img.Names) == 0) {
			return false
		}
	}
	if refs := f["reference"]; len(refs) > 0 {
		ok := false
		for _, want := range refs {
			for _, tag := range img.RepoTags() {
				if tag == want || strings.TrimSuffix(tag, ":latest") == want || strings.HasPrefix(tag, want+":") {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		var labels map[string]string
		if img.Config != nil {
			labels = img.Config.Config.Labels
		}
		got, present := labels[k]
		if !present || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func imageSummary(img *berthi.Image) image.Summary {
	s := image.Summary{
		ID: img.ID.String(), RepoTags: img.RepoTags(), RepoDigests: img.RepoDigests,
		Created: img.Created.Unix(), Size: img.Size, SharedSize: -1, Containers: -1, Labels: map[string]string{},
	}
	if s.RepoTags == nil {
		s.RepoTags = []string{}
	}
	if s.RepoDigests == nil {
		s.RepoDigests = []string{}
	}
	if img.Config != nil && img.Config.Config.Labels != nil {
		s.Labels = img.Config.Config.Labels
	}
	return s
}

func imageInspect(img *berthi.Image) image.InspectResponse {
	out := image.InspectResponse{
		ID: img.ID.String(), RepoTags: img.RepoTags(), RepoDigests: img.RepoDigests,
		Created: img.Created.UTC().Format(time.RFC3339Nano), Size: img.Size,
		RootFS: image.RootFS{Type: "layers"}, Descriptor: &img.Target,
	}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	if out.RepoDigests == nil {
		out.RepoDigests = []string{}
	}
	if c := img.Config; c != nil {
		out.Architecture, out.Os, out.Variant, out.Author = c.Architecture, c.OS, c.Variant, c.Author
		out.Config = &c.Config
		for _, d := range c.RootFS.DiffIDs {
			out.RootFS.Layers = append(out.RootFS.Layers, d.String())
		}
	}
	return out
}

func imageHistory(img *berthi.Image) []image.HistoryResponseItem {
	out := []image.HistoryResponseItem{}
	if img.Config == nil {
		return out
	}
	h := img.Config.History
	for i := len(h) - 1; i >= 0; i-- {
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h[i].CreatedBy, Comment: h[i].Comment, Tags: []string{}}
		if h[i].Created != nil {
			item.Created = h[i].Created.Unix()
		}
		if i == len(h)-1 {
			item.ID, item.Tags = img.ID.String(), img.RepoTags()
		}
		out = append(out, item)
	}
	return out
}
