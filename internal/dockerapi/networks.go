package dockerapi

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/network"
)

// NetworkBackend is what the network routes need: the network service,
// and connect/disconnect, which also change containers' records.
type NetworkBackend interface {
	Networks() *network.Service
	Connect(ctx context.Context, netRef, ctrRef string, es *apinet.EndpointSettings) error
	Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error
}

var networkListFilters = []string{"driver", "id", "label", "name", "scope", "type", "dangling"}

func (s *Server) routeNetworks(b NetworkBackend) {
	svc := b.Networks()
	s.handle("GET /networks", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, networkListFilters...)
		if err != nil {
			return err
		}
		nets, err := svc.List(r.Context())
		if err != nil {
			return err
		}
		out := []apinet.Summary{}
		for _, n := range nets {
			eps, _ := svc.Endpoints(n.ID)
			if !networkMatches(n, len(eps), f) {
				continue
			}
			out = append(out, apinet.Summary{Network: networkAPI(n)})
		}
		return writeJSON(w, http.StatusOK, out)
	})
	s.handle("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		n, err := svc.Get(r.PathValue("id"))
		if err != nil {
			return err
		}
		eps, err := svc.Endpoints(n.ID)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, networkInspect(n, eps))
	})
	s.handle("POST /networks/create", func(w http.ResponseWriter, r *http.Request) error {
		var req apinet.CreateRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		opts := network.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
		if req.EnableIPv6 != nil && *req.EnableIPv6 {
			return errdefs.NotImplemented(errString("IPv6 networks are not supported"))
		}
		if req.IPAM != nil {
			if d := req.IPAM.Driver; d != "" && d != "default" {
				return errdefs.NotImplemented(errString("IPAM driver " + d + " is not supported (default only)"))
			}
			if len(req.IPAM.Config) > 1 {
				return errdefs.NotImplemented(errString("only one IPAM config (one IPv4 subnet) per network is supported"))
			}
			if len(req.IPAM.Config) == 1 {
				c := req.IPAM.Config[0]
				if c.Subnet.IsValid() {
					opts.Subnet = c.Subnet.String()
				}
				if c.IPRange.IsValid() {
					opts.IPRange = c.IPRange.String()
				}
				if c.Gateway.IsValid() {
					opts.Gateway = c.Gateway.String()
				}
			}
		}
		n, err := svc.Create(r.Context(), opts)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, apinet.CreateResponse{ID: n.ID})
	})
	s.handle("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		if err := svc.Remove(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /networks/{id}/connect", func(w http.ResponseWriter, r *http.Request) error {
		var req apinet.ConnectRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if err := b.Connect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /networks/{id}/disconnect", func(w http.ResponseWriter, r *http.Request) error {
		var req apinet.DisconnectRequest
		if err := decodeBody(r, &req); err != nil {
			return err
		}
		if err := b.Disconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /networks/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := parseFilters(r, "label", "label!", "until")
		if err != nil {
			return err
		}
		var until time.Time
		if u := f["until"]; len(u) > 0 {
			if until, err = parseUntil(u[0]); err != nil {
				return err
			}
		}
		removed, err := svc.Prune(r.Context(), func(n *network.Network) bool {
			if !until.IsZero() && !n.Created.Before(until) {
				return false
			}
			return labelsMatch(n.Labels, f["label"], true) && labelsMatch(n.Labels, f["label!"], false)
		})
		if err != nil {
			return err
		}
		if removed == nil {
			removed = []string{}
		}
		return writeJSON(w, http.StatusOK, apinet.PruneReport{NetworksDeleted: removed})
	})
}

type errString string

func (e errString) Error() string { return string(e) }

// labelsMatch: with want, every "k" or "k=v" must hold; without, none may.
func labelsMatch(labels map[string]string, filters []string, want bool) bool {
	for _, f := range filters {
		k, v, hasV := strings.Cut(f, "=")
		got, ok := labels[k]
		hit := ok && (!hasV || got == v)
		if hit != want {
			return false
		}
	}
	return true
}

func networkMatches(n *network.Network, endpoints int, f Filters) bool {
	if v := f["driver"]; len(v) > 0 && !slices.Contains(v, n.Driver) {
		return false
	}
	if v := f["id"]; len(v) > 0 && !slices.ContainsFunc(v, func(p string) bool { return strings.HasPrefix(n.ID, p) }) {
		return false
	}
	if v := f["name"]; len(v) > 0 && !slices.ContainsFunc(v, func(p string) bool { return strings.Contains(n.Name, p) }) {
		return false
	}
	if v := f["scope"]; len(v) > 0 && !slices.Contains(v, "local") {
		return false
	}
	if v := f["type"]; len(v) > 0 {
		t := "custom"
		if n.Predefined() {
			t = "builtin"
		}
		if !slices.Contains(v, t) {
			return false
		}
	}
	if v := f["dangling"]; len(v) > 0 {
		dangling := endpoints == 0 && !n.Predefined()
		if (v[0] == "true" || v[0] == "1") != dangling {
			return false
		}
	}
	return labelsMatch(n.Labels, f["label"], true)
}

func networkAPI(n *network.Network) apinet.Network {
	out := apinet.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		Internal: n.Internal, Options: n.Options, Labels: n.Labels,
		IPAM: apinet.IPAM{Driver: "default", Options: map[string]string{}, Config: []apinet.IPAMConfig{}},
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, apinet.IPAMConfig{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway})
	}
	return out
}

func networkInspect(n *network.Network, eps []*network.Endpoint) apinet.Inspect {
	out := apinet.Inspect{Network: networkAPI(n), Containers: map[string]apinet.EndpointResource{}}
	for _, ep := range eps {
		mac, _ := netHW(ep.MAC)
		out.Containers[ep.ContainerID] = apinet.EndpointResource{
			Name: ep.ContainerName, EndpointID: ep.ID, MacAddress: mac,
			IPv4Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits()),
		}
	}
	return out
}

func netHW(s string) (apinet.HardwareAddr, error) {
	var hw apinet.HardwareAddr
	err := hw.UnmarshalText([]byte(s))
	return hw, err
}

// legacyNetworkSettings adds the top-level fields API 1.50 still sends
// (deprecated, gone in 1.52): the default network's address, as
// `docker inspect -f '{{.NetworkSettings.IPAddress}}'` reads it.
type legacyNetworkSettings struct {
	*container.NetworkSettings
	Bridge      string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

type inspectWithLegacy struct {
	container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

func withLegacyNetworkSettings(c container.InspectResponse) any {
	if c.NetworkSettings == nil {
		return c
	}
	l := &legacyNetworkSettings{NetworkSettings: c.NetworkSettings}
	if ep := c.NetworkSettings.Networks[network.DefaultNetwork]; ep != nil {
		l.EndpointID, l.IPPrefixLen = ep.EndpointID, ep.IPPrefixLen
		if ep.Gateway.IsValid() {
			l.Gateway = ep.Gateway.String()
		}
		if ep.IPAddress.IsValid() {
			l.IPAddress = ep.IPAddress.String()
		}
		if len(ep.MacAddress) > 0 {
			l.MacAddress = ep.MacAddress.String()
		}
	}
	return inspectWithLegacy{InspectResponse: c, NetworkSettings: l}
}
