package container

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// attachNetwork sets up c's network before it starts: for container:<id>
// the other container's namespace (by its init's pid), otherwise what the
// network service gives.
func (s *Service) attachNetwork(ctx context.Context, c *Container) (*NetAttachment, error) {
	if c.HostConfig.NetworkMode.IsContainer() {
		other, err := s.namespaceDonor(c, c.HostConfig.NetworkMode.ConnectedContainer(), "network")
		if err != nil {
			return nil, err
		}
		return &NetAttachment{NetNSPath: fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)}, nil
	}
	if s.cfg.Network == nil {
		return nil, nil
	}
	return s.cfg.Network.Attach(ctx, c)
}

// ConnectNetwork records that a container joins one more network (used by
// `network connect`); the network service wires a running one.
func (s *Service) ConnectNetwork(ctx context.Context, ref, netName string, settings *network.EndpointSettings) (*Container, error) {
	return s.updateEndpoints(ctx, ref, func(c *Container) {
		if c.Endpoints == nil {
			c.Endpoints = map[string]*networkEndpoint{}
		} else {
			m := make(map[string]*networkEndpoint, len(c.Endpoints)+1)
			for k, v := range c.Endpoints {
				m[k] = v
			}
			c.Endpoints = m
		}
		es := settings
		if es == nil {
			es = &networkEndpoint{}
		}
		c.Endpoints[netName] = es
	})
}

// DisconnectNetwork removes a network from the container's record.
func (s *Service) DisconnectNetwork(ctx context.Context, ref string, names ...string) (*Container, error) {
	return s.updateEndpoints(ctx, ref, func(c *Container) {
		m := map[string]*networkEndpoint{}
		for k, v := range c.Endpoints {
			m[k] = v
		}
		for _, n := range names {
			delete(m, n)
		}
		c.Endpoints = m
		if len(names) > 0 && (string(c.HostConfig.NetworkMode) == names[0] || (names[0] == "bridge" && (c.HostConfig.NetworkMode == "" || c.HostConfig.NetworkMode == "default"))) {
			hc := *c.HostConfig
			hc.NetworkMode = "none"
			c.HostConfig = &hc
		}
	})
}

func (s *Service) updateEndpoints(ctx context.Context, ref string, fn func(c *Container)) (*Container, error) {
	c, err := s.index.get(ref)
	if err != nil {
		return nil, err
	}
	unlock := s.ops.lock(c.ID)
	defer unlock()
	return s.mutate(ctx, c.ID, fn)
}

type networkEndpoint = network.EndpointSettings

// networkSettings is inspect's NetworkSettings.
func (s *Service) networkSettings(c *Container) *container.NetworkSettings {
	if s.cfg.Network == nil || !c.Running() {
		return &container.NetworkSettings{Networks: map[string]*networkEndpoint{}}
	}
	return s.cfg.Network.Settings(c.ID)
}

// addNetworkSummary fills the PORTS and networks `docker ps` shows, for a
// running container with a network of its own.
func (s *Service) addNetworkSummary(c *Container, sum *container.Summary) {
	if s.cfg.Network == nil || !c.Running() || c.HostConfig == nil {
		return
	}
	m := c.HostConfig.NetworkMode
	if m.IsHost() || m.IsNone() || m.IsContainer() {
		return
	}
	ns := s.cfg.Network.Settings(c.ID)
	sum.NetworkSettings.Networks = ns.Networks
	for p, binds := range ns.Ports {
		for _, b := range binds {
			var port uint16
			fmt.Sscanf(b.HostPort, "%d", &port)
			sum.Ports = append(sum.Ports, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: port, Type: string(p.Proto())})
		}
	}
	for p := range c.Config.ExposedPorts {
		if _, ok := ns.Ports[p]; !ok {
			sum.Ports = append(sum.Ports, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
}
