// Package remote is berth's registry client: the OCI distribution API (and
// Docker Hub's flavour of it) over net/http — manifests and blobs fetched
// and verified, blobs and manifests pushed, with anonymous, basic and
// Bearer-token authentication from the registry's WWW-Authenticate
// challenge.
package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/reference"
)

// Media types a manifest GET accepts, newest first.
var manifestTypes = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.docker.distribution.manifest.v1+json",
}

// maxManifest bounds a manifest or index read into memory.
const maxManifest = 4 << 20

// Credentials are a registry user name and password (or identity token as
// the password, with user "<token>").
type Credentials struct{ Username, Password string }

// Options configure a Client.
type Options struct {
	// Credentials returns what to log in to host with (zero: anonymous).
	Credentials func(host string) Credentials
	// Insecure lists registries (host[:port]) reached over plain HTTP
	// besides loopback ones.
	Insecure []string
	// Mirrors are Docker Hub mirrors ("https://mirror.example/"), tried
	// in order before registry-1.docker.io when pulling a docker.io
	// reference, as dockerd's --registry-mirror. Check them with
	// ValidateMirror.
	Mirrors []string
	// Transport is the HTTP transport (nil: http.DefaultTransport).
	Transport http.RoundTripper
}

// Client talks to registries. It is safe for concurrent use; tokens are
// kept per host and scope.
type Client struct {
	opts Options
	http *http.Client

	mu     sync.Mutex        // guards tokens
	tokens map[string]string // "host scope" → bearer token
}

// New returns a Client.
func New(opts Options) *Client {
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	return &Client{opts: opts, http: &http.Client{Transport: tr}, tokens: map[string]string{}}
}

// Repository is one repository of a registry.
type Repository struct {
	c      *Client
	host   string // as in the reference ("docker.io", "localhost:5000")
	api    string // scheme://host of the API
	name   string // path in the registry ("library/busybox")
	scopes []string
	// mirrors are the API bases of Docker Hub mirrors, tried before api
	// by Resolve and FetchBlob (pulls only).
	mirrors []string
	// pos is the endpoint (an index of mirrors, len(mirrors) for api)
	// Resolve got its answer from; blobs are fetched from there first,
	// then from the ones after it. Set before any concurrent use.
	pos int
}

// Repository returns the repository a reference names.
func (c *Client) Repository(ref reference.Named) *Repository {
	host := reference.Domain(ref)
	apiHost := host
	if host == "docker.io" {
		apiHost = "registry-1.docker.io"
	}
	scheme := "https"
	if c.plainHTTP(host) {
		scheme = "http"
	}
	name := reference.Path(ref)
	r := &Repository{c: c, host: host, api: scheme + "://" + apiHost, name: name, scopes: []string{"repository:" + name + ":pull"}}
	if host == "docker.io" {
		for _, m := range c.opts.Mirrors {
			r.mirrors = append(r.mirrors, strings.TrimSuffix(m, "/"))
		}
	}
	return r
}

// ValidateMirror checks a registry mirror URL as dockerd does (http or
// https, no credentials, query or fragment) and returns it with one
// trailing slash. Plain HTTP is allowed only for loopback hosts and the
// insecure registries, as for registries themselves.
func ValidateMirror(val string, insecure []string) (string, error) {
	u, err := url.Parse(val)
	if err != nil {
		return "", errdefs.Invalidf("invalid mirror: %q is not a valid URI", val)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errdefs.Invalidf("invalid mirror: unsupported scheme %q in %q (use http:// or https://)", u.Scheme, val)
	}
	if u.Host == "" {
		return "", errdefs.Invalidf("invalid mirror: %q has no host", val)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", errdefs.Invalidf("invalid mirror: query or fragment at end of the URI %q", val)
	}
	if u.User != nil {
		return "", errdefs.Invalidf("invalid mirror: username/password not allowed in URI %q", u.Redacted())
	}
	if u.Scheme == "http" && !(&Client{opts: Options{Insecure: insecure}}).plainHTTP(u.Host) {
		return "", errdefs.Invalidf("invalid mirror: %s is plain HTTP, which berth uses only for loopback hosts and --insecure-registry ones: use https:// or add --insecure-registry %s", val, u.Host)
	}
	return strings.TrimSuffix(val, "/") + "/", nil
}

// plainHTTP says whether host is reached over HTTP: loopback hosts and the
// configured insecure registries.
func (c *Client) plainHTTP(host string) bool {
	for _, h := range c.opts.Insecure {
		if h == host {
			return true
		}
	}
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ForPush widens the token scope to pushing.
func (r *Repository) ForPush() *Repository {
	cp := *r
	cp.scopes = []string{"repository:" + r.name + ":pull,push"}
	cp.mirrors, cp.pos = nil, 0 // mirrors are for pulls only
	return &cp
}

// Mirror is the mirror Resolve got its answer from ("" when the registry
// itself answered).
func (r *Repository) Mirror() string {
	if r.pos >= len(r.mirrors) {
		return ""
	}
	return r.mirrors[r.pos] + "/"
}

// at is r reaching the API through endpoint i of the mirrors followed by
// the registry itself.
func (r *Repository) at(i int) *Repository {
	if i >= len(r.mirrors) {
		return r
	}
	cp := *r
	cp.api = r.mirrors[i]
	return &cp
}

// Host is the registry as the reference names it.
func (r *Repository) Host() string { return r.host }

// Name is the repository's path in the registry ("library/busybox").
func (r *Repository) Name() string { return r.name }

// Resolve fetches the manifest or index that tag or digest names and
// returns its descriptor and bytes, verified against a digest reference.
// A Docker Hub repository asks its mirrors first, in order, and the
// registry when none answers; the endpoint that answered is where
// FetchBlob goes first.
func (r *Repository) Resolve(ctx context.Context, tagOrDigest string) (ocispec.Descriptor, []byte, error) {
	for i := 0; ; i++ {
		desc, body, err := r.at(i).resolve(ctx, tagOrDigest)
		if err == nil || i >= len(r.mirrors) || ctx.Err() != nil {
			if err == nil {
				r.pos = i
			}
			return desc, body, err
		}
		log.From(ctx).Info("registry mirror failed, trying the next", "mirror", r.mirrors[i], "err", err)
	}
}

func (r *Repository) resolve(ctx context.Context, tagOrDigest string) (ocispec.Descriptor, []byte, error) {
	req := func() (*http.Request, error) {
		q, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("manifests", tagOrDigest), nil)
		if err == nil {
			q.Header.Set("Accept", strings.Join(manifestTypes, ", "))
		}
		return q, err
	}
	resp, err := r.do(ctx, req)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ocispec.Descriptor{}, nil, errdefs.NotFoundf("manifest for %s/%s:%s not found: manifest unknown", r.host, r.name, tagOrDigest)
	}
	if err := statusError(resp, "manifest "+tagOrDigest); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if len(body) > maxManifest {
		return ocispec.Descriptor{}, nil, errdefs.Invalidf("manifest %s is larger than %d bytes", tagOrDigest, maxManifest)
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	if mt == "" || mt == "application/json" || mt == "text/plain" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		json.Unmarshal(body, &probe)
		mt = probe.MediaType
	}
	if mt == "application/vnd.docker.distribution.manifest.v1+prettyjws" || mt == "application/vnd.docker.distribution.manifest.v1+json" {
		return ocispec.Descriptor{}, nil, errdefs.NotImplemented(fmt.Errorf("%s/%s:%s is a Docker schema 1 image, which berth does not support: push it again with a current docker to convert it", r.host, r.name, tagOrDigest))
	}
	d := digest.FromBytes(body)
	if want, err := digest.Parse(tagOrDigest); err == nil && want != d {
		return ocispec.Descriptor{}, nil, errdefs.Invalidf("manifest %s: the registry sent content with digest %s", want, d)
	}
	// By tag there is no digest to hold the body to but the one the
	// registry names for it: a body that does not match is corrupt or was
	// tampered with in the registry's storage or on the way.
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if want, err := digest.Parse(h); err == nil && want != d {
			return ocispec.Descriptor{}, nil, errdefs.Invalidf("manifest %s/%s:%s: digest mismatch: the registry names it %s but sent content with digest %s", r.host, r.name, tagOrDigest, want, d)
		}
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(body))}, body, nil
}

// FetchBlob streams a blob, from the endpoint Resolve used and, failing
// that, the ones after it (the next mirrors, the registry). The caller
// verifies it (the content store's WriteBlob does).
func (r *Repository) FetchBlob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, _, err := r.FetchBlobFrom(ctx, desc, 0)
	return rc, err
}

// FetchBlobFrom is FetchBlob from byte offset on, asked with an HTTP
// Range: partial says the registry sent only the rest (206); otherwise
// the body is the whole blob and the caller skips offset bytes.
func (r *Repository) FetchBlobFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (_ io.ReadCloser, partial bool, _ error) {
	for i := r.pos; ; i++ {
		rc, partial, err := r.at(i).fetchBlob(ctx, desc, offset)
		if err == nil || i >= len(r.mirrors) || ctx.Err() != nil {
			return rc, partial, err
		}
		log.From(ctx).Info("registry mirror failed, trying the next", "mirror", r.mirrors[i], "blob", desc.Digest, "err", err)
	}
}

func (r *Repository) fetchBlob(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, bool, error) {
	resp, err := r.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("blobs", desc.Digest.String()), nil)
		if err == nil && offset > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		}
		return req, err
	})
	if err != nil {
		return nil, false, err
	}
	if offset > 0 && resp.StatusCode == http.StatusPartialContent {
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(offset, 10)+"-") {
			resp.Body.Close()
			return nil, false, fmt.Errorf("blob %s: the registry answered a range from %d with %q", desc.Digest, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, true, nil
	}
	if err := statusError(resp, "blob "+desc.Digest.String()); err != nil {
		resp.Body.Close()
		return nil, false, err
	}
	return resp.Body, false, nil
}

// BlobExists asks whether the repository has a blob (HEAD).
func (r *Repository) BlobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodHead, r.url("blobs", d.String()), nil)
	})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return true, nil
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, statusError(resp, "blob "+d.String())
}

// PushBlob uploads a blob in one monolithic PUT after opening an upload.
// With mountFrom (another repository of the same registry that has the
// blob) the registry is first asked to mount it from there: nothing is
// sent when it can. It reports whether the blob was mounted.
func (r *Repository) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error), mountFrom string) (mounted bool, err error) {
	uploads := r.api + "/v2/" + r.name + "/blobs/uploads/"
	if mountFrom != "" {
		uploads += "?" + url.Values{"mount": {desc.Digest.String()}, "from": {mountFrom}}.Encode()
	}
	resp, err := r.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, uploads, nil)
	})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated && mountFrom != "" {
		return true, nil
	}
	if resp.StatusCode != http.StatusAccepted {
		return false, statusError(resp, "upload of "+desc.Digest.String())
	}
	loc, err := resp.Location()
	if err != nil {
		return false, fmt.Errorf("upload of %s: no Location: %w", desc.Digest, err)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	resp, err = r.do(ctx, func() (*http.Request, error) {
		body, err := open()
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
		if err == nil {
			req.ContentLength = desc.Size
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		return req, err
	})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return false, statusError(resp, "upload of "+desc.Digest.String())
	}
	return false, nil
}

// PushManifest puts a manifest under tag (or its digest).
func (r *Repository) PushManifest(ctx context.Context, tag string, desc ocispec.Descriptor, body []byte) error {
	resp, err := r.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("manifests", tag), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", desc.MediaType)
		}
		return req, err
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return statusError(resp, "manifest "+tag)
	}
	return nil
}

// CheckLogin verifies credentials against the registry's /v2/ endpoint.
func (r *Repository) CheckLogin(ctx context.Context) error {
	r2 := *r
	r2.scopes = nil
	resp, err := r2.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, r.api+"/v2/", nil)
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return statusError(resp, "login")
}

func (r *Repository) url(kind, ref string) string {
	return r.api + "/v2/" + r.name + "/" + kind + "/" + url.PathEscape(ref)
}

// do sends a request made by mk, answering an auth challenge once: Basic
// with the host's credentials, or Bearer with a token fetched from the
// challenge's realm.
func (r *Repository) do(ctx context.Context, mk func() (*http.Request, error)) (*http.Response, error) {
	key := r.api + " " + strings.Join(r.scopes, " ")
	for attempt := 0; ; attempt++ {
		req, err := mk()
		if err != nil {
			return nil, err
		}
		r.c.mu.Lock()
		tok := r.c.tokens[key]
		r.c.mu.Unlock()
		switch {
		case strings.HasPrefix(tok, "Basic "), strings.HasPrefix(tok, "Bearer "):
			req.Header.Set("Authorization", tok)
		}
		resp, err := r.c.http.Do(req)
		if err != nil {
			return nil, errdefs.Unavailable(fmt.Errorf("registry %s: %w", r.host, err))
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		challenge := resp.Header.Get("WWW-Authenticate")
		resp.Body.Close()
		auth, err := r.authorize(ctx, challenge)
		if err != nil {
			return nil, err
		}
		r.c.mu.Lock()
		r.c.tokens[key] = auth
		r.c.mu.Unlock()
	}
}

// authorize answers a WWW-Authenticate challenge with an Authorization
// header value.
func (r *Repository) authorize(ctx context.Context, challenge string) (string, error) {
	scheme, params := ParseChallenge(challenge)
	var creds Credentials
	if r.c.opts.Credentials != nil {
		creds = r.c.opts.Credentials(r.host)
	}
	switch strings.ToLower(scheme) {
	case "basic":
		if creds.Username == "" {
			return "", errdefs.Unauthorized(fmt.Errorf("%s needs a login: run `berth login %s`", r.host, r.host))
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(creds.Username+":"+creds.Password)), nil
	case "bearer":
		realm := params["realm"]
		if realm == "" {
			return "", fmt.Errorf("registry %s: bearer challenge without a realm", r.host)
		}
		u, err := url.Parse(realm)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return "", fmt.Errorf("registry %s: bad token realm %q", r.host, realm)
		}
		q := u.Query()
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		for _, s := range r.scopes {
			q.Add("scope", s)
		}
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		if creds.Username != "" {
			req.SetBasicAuth(creds.Username, creds.Password)
		}
		resp, err := r.c.http.Do(req)
		if err != nil {
			return "", errdefs.Unavailable(fmt.Errorf("token server of %s: %w", r.host, err))
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", errdefs.Unauthorized(fmt.Errorf("%s refused the credentials: run `berth login %s`", r.host, r.host))
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("token server of %s answered %s", r.host, resp.Status)
		}
		var t struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
			return "", fmt.Errorf("token server of %s: %w", r.host, err)
		}
		if t.Token == "" {
			t.Token = t.AccessToken
		}
		if t.Token == "" {
			return "", fmt.Errorf("token server of %s sent no token", r.host)
		}
		return "Bearer " + t.Token, nil
	}
	return "", errdefs.Unauthorized(fmt.Errorf("registry %s asks for authentication %q, which berth does not speak", r.host, scheme))
}

// ParseChallenge splits a WWW-Authenticate value into its scheme and
// parameters: `Bearer realm="https://auth",service="reg",scope="a,b"`.
func ParseChallenge(h string) (scheme string, params map[string]string) {
	params = map[string]string{}
	h = strings.TrimSpace(h)
	sp := strings.IndexAny(h, " \t")
	if sp < 0 {
		return h, params
	}
	scheme, rest := h[:sp], h[sp+1:]
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			break
		}
		key := asciiLower(strings.TrimSpace(rest[:eq]))
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			val, rest = unquote(rest[1:])
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		params[key] = val
	}
	return scheme, params
}

// asciiLower lower-cases ASCII letters only (parameter names are tokens;
// other bytes stay as they are).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// unquote reads a quoted-string body (after its opening quote) with
// backslash escapes, returning it and what follows the closing quote.
func unquote(s string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// statusError turns a registry error answer into an error of the right
// class, with the registry's message.
func statusError(resp *http.Response, what string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		msg = strings.ToLower(body.Errors[0].Code) + ": " + body.Errors[0].Message
	}
	err := fmt.Errorf("%s: %s: %s", what, resp.Status, msg)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return errdefs.NotFound(err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return errdefs.Unauthorized(err)
	case http.StatusBadRequest:
		return errdefs.Invalid(err)
	}
	return errors.New(err.Error())
}
