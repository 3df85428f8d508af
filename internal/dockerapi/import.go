package dockerapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"

	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	berthi "github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/reference"
)

// ImportBackend is what `docker import` needs of the image store.
type ImportBackend interface {
	Import(ctx context.Context, r io.Reader, opts berthi.ImportOptions) (*berthi.Image, error)
}

// importImage serves POST /images/create?fromSrc=-: the body is a root
// filesystem tarball made into a one-layer image, named repo[:tag], with
// changes (Dockerfile instructions) as its run configuration, as dockerd.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request, b ImportBackend) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		return errdefs.NotImplemented(fmt.Errorf("import from %q: berth imports only the request body (fromSrc=-); download the file and import it", src))
	}
	var opts berthi.ImportOptions
	if repo := q.Get("repo"); repo != "" {
		named, err := reference.ParseNormalizedNamed(repo)
		if err != nil {
			return errdefs.Invalidf("invalid reference format: repository name %q: %v", repo, err)
		}
		if _, ok := named.(reference.Digested); ok {
			return errdefs.Invalidf("cannot import digest reference %q", repo)
		}
		if tag := q.Get("tag"); tag != "" {
			if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
				return errdefs.Invalidf("invalid tag %q: %v", tag, err)
			}
		}
		opts.Ref = reference.TagNameOnly(named).String()
	}
	if p := q.Get("platform"); p != "" {
		plat, err := berthi.ParsePlatform(p)
		if err != nil {
			return err
		}
		opts.Platform = &plat
	}
	var changes []string
	for _, c := range q["changes"] {
		// The docker CLI sends each --change as one value; older clients
		// joined them with newlines.
		changes = append(changes, strings.Split(c, "\n")...)
	}
	if len(changes) > 0 {
		cfg, err := berthc.ImageConfigFromChanges(changes)
		if err != nil {
			return err
		}
		opts.Config = cfg
	}
	opts.Message = q.Get("message")
	img, err := b.Import(r.Context(), r.Body, opts)
	if err != nil {
		return err
	}
	pw := newProgressWriter(w)
	return pw.Send(jsonstream.Message{Status: img.ID.String()})
}
