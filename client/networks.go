package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/network"
)

// NetworkCreate creates a network.
func (c *Client) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	var out network.CreateResponse
	resp, err := c.do(ctx, http.MethodPost, "/networks/create", nil, req, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// NetworkList lists the networks matching filters.
func (c *Client) NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	q, err := filterQuery(filters)
	if err != nil {
		return nil, err
	}
	var out []network.Summary
	return out, c.getJSON(ctx, "/networks", q, &out)
}

// NetworkInspect returns a network by ID, name or ID prefix.
func (c *Client) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	var out network.Inspect
	return out, c.getJSON(ctx, "/networks/"+url.PathEscape(ref), nil, &out)
}

// NetworkRemove removes a network.
func (c *Client) NetworkRemove(ctx context.Context, ref string) error {
	return c.discard(c.do(ctx, http.MethodDelete, "/networks/"+url.PathEscape(ref), nil, nil, true))
}

// NetworkConnect connects a container to a network.
func (c *Client) NetworkConnect(ctx context.Context, ref, ctr string, es *network.EndpointSettings) error {
	return c.discard(c.do(ctx, http.MethodPost, "/networks/"+url.PathEscape(ref)+"/connect", nil,
		network.ConnectRequest{Container: ctr, EndpointConfig: es}, true))
}

// NetworkDisconnect disconnects a container from a network.
func (c *Client) NetworkDisconnect(ctx context.Context, ref, ctr string, force bool) error {
	return c.discard(c.do(ctx, http.MethodPost, "/networks/"+url.PathEscape(ref)+"/disconnect", nil,
		network.DisconnectRequest{Container: ctr, Force: force}, true))
}

// NetworkPrune removes unused user-defined networks.
func (c *Client) NetworkPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	q, err := filterQuery(filters)
	if err != nil {
		return network.PruneReport{}, err
	}
	var out network.PruneReport
	resp, err := c.do(ctx, http.MethodPost, "/networks/prune", q, nil, true)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
