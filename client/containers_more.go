package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
)

func containerPath(id, verb string) string { return "/containers/" + url.PathEscape(id) + "/" + verb }

// doRaw sends a request with a raw body (a tar) on the negotiated version.
func (c *Client) doRaw(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return nil, err
	}
	u := c.base + "/v" + v + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.connectError(err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	if method == http.MethodHead {
		return nil, responseError(&http.Response{StatusCode: resp.StatusCode, Body: http.NoBody})
	}
	return nil, responseError(resp)
}

func decodePathStat(h string) (container.PathStat, error) {
	var ps container.PathStat
	if h == "" {
		return ps, fmt.Errorf("the daemon sent no path stat")
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return ps, fmt.Errorf("decode path stat: %w", err)
	}
	return ps, json.Unmarshal(b, &ps)
}

// ContainerStatPath describes path in the container (HEAD archive).
func (c *Client) ContainerStatPath(ctx context.Context, id, path string) (container.PathStat, error) {
	resp, err := c.doRaw(ctx, http.MethodHead, containerPath(id, "archive"), url.Values{"path": {path}}, nil, "")
	if err != nil {
		return container.PathStat{}, err
	}
	resp.Body.Close()
	return decodePathStat(resp.Header.Get("X-Docker-Container-Path-Stat"))
}

// CopyFromContainer returns a tar of path in the container and its stat.
func (c *Client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error) {
	resp, err := c.doRaw(ctx, http.MethodGet, containerPath(id, "archive"), url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, container.PathStat{}, err
	}
	ps, err := decodePathStat(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err != nil {
		resp.Body.Close()
		return nil, ps, err
	}
	return resp.Body, ps, nil
}

// CopyToContainerOptions are PUT archive's flags.
type CopyToContainerOptions struct {
	AllowOverwriteDirWithFile bool
	CopyUIDGID                bool
}

// CopyToContainer unpacks the tar r into the directory dst of the container.
func (c *Client) CopyToContainer(ctx context.Context, id, dst string, r io.Reader, opts CopyToContainerOptions) error {
	q := url.Values{"path": {dst}}
	if !opts.AllowOverwriteDirWithFile {
		q.Set("noOverwriteDirNonDir", "true")
	}
	if opts.CopyUIDGID {
		q.Set("copyUIDGID", "true")
	}
	return c.discard(c.doRaw(ctx, http.MethodPut, containerPath(id, "archive"), q, r, "application/x-tar"))
}

// ContainerExport returns the container's flattened root filesystem as a tar.
func (c *Client) ContainerExport(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, containerPath(id, "export"), nil, nil, true)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerChanges lists what the container added, changed and deleted.
func (c *Client) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	return out, c.getJSON(ctx, containerPath(id, "changes"), nil, &out)
}

// CommitOptions are `commit` flags.
type CommitOptions struct {
	Reference string // repo[:tag]
	Comment   string
	Author    string
	Changes   []string
	Pause     bool
	Config    *container.Config
}

// ContainerCommit makes an image of the container; it returns the image ID.
func (c *Client) ContainerCommit(ctx context.Context, id string, opts CommitOptions) (string, error) {
	q := url.Values{"container": {id}, "comment": {opts.Comment}, "author": {opts.Author}, "pause": {strconv.FormatBool(opts.Pause)}}
	if opts.Reference != "" {
		repo, tag := splitRepoTag(opts.Reference)
		q.Set("repo", repo)
		if tag != "" {
			q.Set("tag", tag)
		}
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	resp, err := c.do(ctx, http.MethodPost, "/commit", q, opts.Config, true)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out container.CommitResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("decode commit response: %w", err)
	}
	return out.ID, nil
}

// splitRepoTag splits "repo:tag" at the tag's colon (not a registry port's).
func splitRepoTag(ref string) (string, string) {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return ref[:i], ref[i+1:]
		case '/', '@':
			return ref, ""
		}
	}
	return ref, ""
}

// ContainerStatsOneShot returns one stats sample (with precpu when
// oneShot is false, which takes a second).
func (c *Client) ContainerStatsOneShot(ctx context.Context, id string, oneShot bool) (container.StatsResponse, error) {
	var out container.StatsResponse
	q := url.Values{"stream": {"false"}}
	if oneShot {
		q.Set("one-shot", "true")
	}
	return out, c.getJSON(ctx, containerPath(id, "stats"), q, &out)
}

// ContainerStats streams stats samples, one a second, until ctx ends or the
// container stops; the channel is closed then.
func (c *Client) ContainerStats(ctx context.Context, id string) (<-chan container.StatsResponse, error) {
	resp, err := c.do(ctx, http.MethodGet, containerPath(id, "stats"), url.Values{"stream": {"true"}}, nil, true)
	if err != nil {
		return nil, err
	}
	ch := make(chan container.StatsResponse)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				return
			}
			select {
			case ch <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// ContainerTop lists the container's processes (`ps psArgs`).
func (c *Client) ContainerTop(ctx context.Context, id string, psArgs string) (container.TopResponse, error) {
	var out container.TopResponse
	var q url.Values
	if psArgs != "" {
		q = url.Values{"ps_args": {psArgs}}
	}
	return out, c.getJSON(ctx, containerPath(id, "top"), q, &out)
}

// ContainerPause freezes the container.
func (c *Client) ContainerPause(ctx context.Context, id string) error {
	return c.discard(c.do(ctx, http.MethodPost, containerPath(id, "pause"), nil, nil, true))
}

// ContainerUnpause thaws the container.
func (c *Client) ContainerUnpause(ctx context.Context, id string) error {
	return c.discard(c.do(ctx, http.MethodPost, containerPath(id, "unpause"), nil, nil, true))
}

// ContainerUpdate changes the container's resource limits and restart policy.
func (c *Client) ContainerUpdate(ctx context.Context, id string, u container.UpdateConfig) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, containerPath(id, "update"), nil, u, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out container.UpdateResponse
	return out.Warnings, json.NewDecoder(resp.Body).Decode(&out)
}

// DiskUsageResponse is GET /system/df as the docker CLI reads it.
type DiskUsageResponse struct {
	system.DiskUsage
	LayersSize int64
	Images     []struct {
		ID         string `json:"Id"`
		RepoTags   []string
		Size       int64
		Containers int64
		Created    int64
	}
	Containers []container.Summary
	Volumes    []struct {
		Name      string
		UsageData *struct{ Size, RefCount int64 }
	}
}

// DiskUsage is GET /system/df.
func (c *Client) DiskUsage(ctx context.Context) (DiskUsageResponse, error) {
	var out DiskUsageResponse
	return out, c.getJSON(ctx, "/system/df", nil, &out)
}

// PruneContainers removes stopped containers.
func (c *Client) PruneContainers(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	var out container.PruneReport
	return out, c.postJSON(ctx, "/containers/prune", filters, &out)
}

// PruneImagesReport is POST /images/prune's answer.
type PruneImagesReport struct {
	ImagesDeleted  []struct{ Untagged, Deleted string }
	SpaceReclaimed uint64
}

// PruneImages removes dangling images (all unused with all).
func (c *Client) PruneImages(ctx context.Context, all bool) (PruneImagesReport, error) {
	var out PruneImagesReport
	f := map[string][]string{}
	if !all {
		f["dangling"] = []string{"true"}
	} else {
		f["dangling"] = []string{"false"}
	}
	return out, c.postJSON(ctx, "/images/prune", f, &out)
}

func (c *Client) postJSON(ctx context.Context, path string, filters map[string][]string, out any) error {
	q := url.Values{}
	if len(filters) > 0 {
		b, err := json.Marshal(filters)
		if err != nil {
			return err
		}
		q.Set("filters", string(b))
	}
	resp, err := c.do(ctx, http.MethodPost, path, q, nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}
