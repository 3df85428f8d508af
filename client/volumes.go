package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/volume"
)

// VolumeCreate creates a volume ("" name for an anonymous one).
func (c *Client) VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	var out volume.Volume
	resp, err := c.do(ctx, http.MethodPost, "/volumes/create", nil, req, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// VolumeList lists volumes matching filters.
func (c *Client) VolumeList(ctx context.Context, filters map[string][]string) (volume.ListResponse, error) {
	q, err := filterQuery(filters)
	if err != nil {
		return volume.ListResponse{}, err
	}
	var out volume.ListResponse
	return out, c.getJSON(ctx, "/volumes", q, &out)
}

// VolumeInspect returns a volume.
func (c *Client) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	var out volume.Volume
	return out, c.getJSON(ctx, "/volumes/"+url.PathEscape(name), nil, &out)
}

// VolumeRemove removes a volume.
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.discard(c.do(ctx, http.MethodDelete, "/volumes/"+url.PathEscape(name), q, nil, true))
}

// VolumePrune removes unused volumes.
func (c *Client) VolumePrune(ctx context.Context, filters map[string][]string) (volume.PruneReport, error) {
	q, err := filterQuery(filters)
	if err != nil {
		return volume.PruneReport{}, err
	}
	var out volume.PruneReport
	resp, err := c.do(ctx, http.MethodPost, "/volumes/prune", q, nil, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// filterQuery encodes filters as the `filters` query parameter.
func filterQuery(filters map[string][]string) (url.Values, error) {
	q := url.Values{}
	if len(filters) == 0 {
		return q, nil
	}
	b, err := json.Marshal(filters)
	if err != nil {
		return nil, err
	}
	q.Set("filters", string(b))
	return q, nil
}
