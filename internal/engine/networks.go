package engine

import (
	"context"
	"maps"

	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"

	berthc "github.com/berth/berth/internal/container"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/network"
)

// networks gives the container service the network service.
type networks struct {
	svc    *network.Service
	images *image.Store
}

func (a networks) Attach(ctx context.Context, c *berthc.Container) (*berthc.NetAttachment, error) {
	hostname := berthc.ShortID(c.ID)
	if c.Config.Hostname != "" {
		hostname = c.Config.Hostname
	}
	exposed := apinet.PortSet{}
	maps.Copy(exposed, c.Config.ExposedPorts)
	if c.HostConfig.PublishAllPorts {
		if img, _, err := a.images.Resolve(ctx, c.Image); err == nil {
			maps.Copy(exposed, img.ContainerConfig().ExposedPorts)
		}
	}
	var dns []string
	for _, d := range c.HostConfig.DNS {
		dns = append(dns, d.String())
	}
	att, err := a.svc.Attach(ctx, network.AttachRequest{
		ContainerID: c.ID, Name: c.Name, Hostname: hostname, Mode: c.HostConfig.NetworkMode,
		Endpoints: c.Endpoints, Ports: c.HostConfig.PortBindings, PublishAll: c.HostConfig.PublishAllPorts,
		Exposed: exposed, Links: c.HostConfig.Links, DNS: dns,
	})
	if err != nil || att == nil {
		return nil, err
	}
	out := &berthc.NetAttachment{NetNSPath: att.NetNSPath, IP: att.IP.String(), Hosts: att.Hosts}
	if att.Nameserver.IsValid() {
		out.Nameserver = att.Nameserver.String()
	}
	return out, nil
}

func (a networks) Detach(ctx context.Context, id string) error { return a.svc.Detach(ctx, id) }

func (a networks) Settings(id string) *container.NetworkSettings { return a.svc.Settings(id) }

func (a networks) Attached() ([]string, error) { return a.svc.Attached() }

// networkBackend serves /networks: the network service, and the container
// service for connect and disconnect (which change containers' records).
type networkBackend struct {
	svc        *network.Service
	containers *berthc.Service
}

func (b networkBackend) Networks() *network.Service { return b.svc }

// Connect joins a container to a network: a running one at once, any
// one from its next start on (its record keeps the endpoint settings).
func (b networkBackend) Connect(ctx context.Context, netRef, ctrRef string, es *apinet.EndpointSettings) error {
	n, err := b.svc.Get(netRef)
	if err != nil {
		return err
	}
	c, err := b.containers.Get(ctrRef)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" || c.HostConfig.NetworkMode.IsHost() || c.HostConfig.NetworkMode.IsContainer() {
		return errdefs.Forbidden(errForbiddenConnect{n.Name})
	}
	if c.Running() {
		hostname := c.Config.Hostname
		if hostname == "" {
			hostname = berthc.ShortID(c.ID)
		}
		if err := b.svc.Connect(ctx, n.ID, network.ConnectRequest{ContainerID: c.ID, Name: c.Name, Hostname: hostname, Settings: es}); err != nil {
			return err
		}
	}
	_, err = b.containers.ConnectNetwork(ctx, c.ID, n.Name, es)
	return err
}

// Disconnect takes a container off a network.
func (b networkBackend) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	n, err := b.svc.Get(netRef)
	if err != nil {
		return err
	}
	c, err := b.containers.Get(ctrRef)
	if err != nil {
		return err
	}
	if c.Running() {
		if err := b.svc.Disconnect(ctx, n.ID, c.ID); err != nil && !force {
			return err
		}
	}
	_, err = b.containers.DisconnectNetwork(ctx, c.ID, n.Name)
	return err
}

type errForbiddenConnect struct{ name string }

func (e errForbiddenConnect) Error() string {
	return "container cannot be connected to network " + e.name + " (network mode host, container, or a non-bridge network)"
}
