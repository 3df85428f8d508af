package dockerapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	berthi "github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/reference"
	"github.com/berth/berth/internal/remote"
)

// RegistryBackend is what pull, push and login need of the image store.
type RegistryBackend interface {
	Pull(ctx context.Context, ref string, repo *remote.Repository, opts berthi.PullOptions) (*berthi.Image, error)
	Push(ctx context.Context, ref string, repo *remote.Repository, progress berthi.Progress) (ocispec.Descriptor, error)
}

// registryAuth reads the X-Registry-Auth header: base64url JSON of the
// credentials (empty: anonymous).
func registryAuth(r *http.Request) (remote.Credentials, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return remote.Credentials{}, nil
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(h); err != nil {
			return remote.Credentials{}, errdefs.Invalidf("invalid X-Registry-Auth header: %v", err)
		}
	}
	var a registry.AuthConfig
	if len(b) > 0 && string(b) != "{}" {
		if err := json.Unmarshal(b, &a); err != nil {
			return remote.Credentials{}, errdefs.Invalidf("invalid X-Registry-Auth header: %v", err)
		}
	}
	if a.IdentityToken != "" {
		return remote.Credentials{Username: "<token>", Password: a.IdentityToken}, nil
	}
	return remote.Credentials{Username: a.Username, Password: a.Password}, nil
}

// repository makes the registry client for ref with the request's
// credentials.
func (s *Server) repository(ref string, creds remote.Credentials) (*remote.Repository, error) {
	named, err := berthi.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	c := remote.New(remote.Options{
		Credentials: func(string) remote.Credentials { return creds },
		Insecure:    s.cfg.InsecureRegistries,
		Mirrors:     s.cfg.RegistryMirrors,
	})
	return c.Repository(named), nil
}

// progressTo adapts image progress to the stream.
func progressTo(pw *progressWriter) berthi.Progress {
	return func(id, status string, current, total int64) {
		m := jsonstream.Message{ID: id, Status: status}
		if total > 0 {
			m.Progress = &jsonstream.Progress{Current: current, Total: total}
		}
		pw.Send(m)
	}
}

// pull serves POST /images/create?fromImage=...: the image is pulled while
// Docker's progress messages stream.
func (s *Server) pull(w http.ResponseWriter, r *http.Request, b RegistryBackend) error {
	q := r.URL.Query()
	ref := q.Get("fromImage")
	if tag := q.Get("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	named, err := berthi.ParseReference(ref)
	if err != nil {
		return err
	}
	if reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
	}
	var opts berthi.PullOptions
	if p := q.Get("platform"); p != "" {
		plat, err := berthi.ParsePlatform(p)
		if err != nil {
			return err
		}
		opts.Platform = &plat
	}
	creds, err := registryAuth(r)
	if err != nil {
		return err
	}
	repo, err := s.repository(named.String(), creds)
	if err != nil {
		return err
	}
	pw := newProgressWriter(w)
	familiar := reference.FamiliarString(named)
	if t, ok := named.(reference.Tagged); ok {
		pw.Send(jsonstream.Message{ID: t.Tag(), Status: "Pulling from " + reference.FamiliarName(named)})
	}
	opts.Progress = progressTo(pw)
	if _, err := b.Pull(r.Context(), named.String(), repo, opts); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnauthorized) {
			err = fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", reference.FamiliarName(named), err)
		}
		return pw.Fail(err)
	}
	return pw.Send(jsonstream.Message{Status: "Status: Downloaded newer image for " + familiar})
}

// push serves POST /images/{name}/push?tag=.
func (s *Server) push(w http.ResponseWriter, r *http.Request, name string, b RegistryBackend) error {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	creds, err := registryAuth(r)
	if err != nil {
		return err
	}
	named, err := berthi.ParseReference(ref)
	if err != nil {
		return err
	}
	if reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
	}
	repo, err := s.repository(named.String(), creds)
	if err != nil {
		return err
	}
	pw := newProgressWriter(w)
	pw.Send(jsonstream.Message{Status: "The push refers to repository [" + named.Name() + "]"})
	if _, err := b.Push(r.Context(), named.String(), repo.ForPush(), progressTo(pw)); err != nil {
		return pw.Fail(err)
	}
	return nil
}

// login serves POST /auth: the credentials are checked against the
// registry's /v2/ endpoint.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var a registry.AuthConfig
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&a); err != nil {
		return errdefs.Invalidf("invalid login request: %v", err)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(a.ServerAddress, "https://"), "http://")
	host = strings.TrimSuffix(host, "/")
	if host == "" || host == "index.docker.io/v1" {
		host = "docker.io"
	}
	repo, err := s.repository(host+"/library/x", remote.Credentials{Username: a.Username, Password: a.Password})
	if err != nil {
		return err
	}
	if err := repo.CheckLogin(r.Context()); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
}
