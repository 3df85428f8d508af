package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/metadata"
)

// AttachRequest is what a container's start needs from the network: its
// HostConfig and NetworkingConfig, reduced.
type AttachRequest struct {
	ContainerID string
	Name        string // without the leading slash
	Hostname    string
	Mode        container.NetworkMode
	Endpoints   map[string]*network.EndpointSettings // by network name or ID
	Ports       network.PortMap
	PublishAll  bool
	Exposed     network.PortSet
	Links       []string // legacy --link name:alias
	DNS         []string // --dns: the embedded server forwards to these
}

// Attachment is what the container gets: the namespace to join and what
// its /etc/hosts and /etc/resolv.conf must say.
type Attachment struct {
	NetNSPath string
	IP        netip.Addr // on the primary network
	// Hosts are extra /etc/hosts lines: own address, links.
	Hosts []string
	// Nameserver is the embedded DNS server (user-defined networks); when
	// invalid, the container uses the host's resolvers.
	Nameserver netip.Addr
}

// Attach gives a container with a bridge-like network mode its network
// namespace and endpoints. For host, none and container:<id> there is
// nothing to do and it returns nil. On failure nothing is left behind.
func (s *Service) Attach(ctx context.Context, req AttachRequest) (_ *Attachment, err error) {
	mode := string(req.Mode)
	if mode == "" || mode == "default" {
		mode = DefaultNetwork
	}
	if req.Mode.IsHost() || req.Mode.IsNone() || req.Mode.IsContainer() {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	nets, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	primary, err := findNetwork(nets, mode)
	if err != nil {
		return nil, err
	}
	list := []*Network{primary}
	var names []string
	for k := range req.Endpoints {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		n, err := findNetwork(nets, k)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(list, func(o *Network) bool { return o.ID == n.ID }) {
			list = append(list, n)
		}
	}
	for _, n := range list {
		if n.Driver != "bridge" {
			return nil, errdefs.Invalidf("container cannot be connected to network %s together with others (driver %s)", n.Name, n.Driver)
		}
	}
	nsPath := s.netnsPath(req.ContainerID)
	removeNetNS(nsPath) // a leftover of a crash
	pooled, havePool := s.takePooled()
	if havePool {
		nsPath = pooled.path
		defer s.refillPool()
		defer pooled.close() // its socket would keep the namespace alive
	} else if err := createNetNS(nsPath); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.detachLocked(context.WithoutCancel(ctx), req.ContainerID)
			if havePool {
				s.dropPooled(pooled) // whatever of it is left
			}
		}
	}()
	att := &Attachment{NetNSPath: nsPath}
	for i, n := range list {
		var pre *pooledNS
		if i == 0 && havePool {
			pre = &pooled
		}
		ep, err := s.plugLocked(ctx, n, req, settingsFor(req.Endpoints, n), nsPath, pre, fmt.Sprintf("eth%d", i), i == 0)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			att.IP = ep.IP
			if n.userDefined() {
				att.Nameserver = n.Gateway
			}
			att.Hosts = append(att.Hosts, ep.Links...)
		}
	}
	if err := s.applyLocked(); err != nil {
		return nil, err
	}
	for _, n := range list {
		s.publish(n, events.ActionConnect, map[string]string{"container": req.ContainerID})
	}
	return att, nil
}

func settingsFor(m map[string]*network.EndpointSettings, n *Network) *network.EndpointSettings {
	if es := m[n.Name]; es != nil {
		return es
	}
	if es := m[n.ID]; es != nil {
		return es
	}
	if es := m["default"]; es != nil && n.Name == DefaultNetwork {
		return es
	}
	return &network.EndpointSettings{}
}

// plugLocked allocates the endpoint (address, ports) in one transaction
// and wires it. Preconditions: s.mu is held; the namespace exists.
func (s *Service) plugLocked(ctx context.Context, n *Network, req AttachRequest, es *network.EndpointSettings, nsPath string, pre *pooledNS, ifname string, primary bool) (*Endpoint, error) {
	ep := &Endpoint{ID: newID(), ContainerID: req.ContainerID, ContainerName: req.Name, NetworkID: n.ID, IfName: ifname,
		Veth: vethName(req.ContainerID, n.ID), NetNS: nsPath, Upstream: req.DNS}
	if pre != nil {
		ep.Veth = pre.veth
	}
	if es != nil {
		for _, a := range es.Aliases {
			if a != "" && !slices.Contains(ep.Aliases, a) {
				ep.Aliases = append(ep.Aliases, a)
			}
		}
	}
	if n.userDefined() {
		ep.DNSNames = append([]string{req.Name}, ep.Aliases...)
		if len(req.ContainerID) >= 12 {
			ep.DNSNames = append(ep.DNSNames, req.ContainerID[:12])
		}
		if req.Hostname != "" && !slices.Contains(ep.DNSNames, req.Hostname) {
			ep.DNSNames = append(ep.DNSNames, req.Hostname)
		}
	}
	err := s.cfg.State.Update(func(tx *metadata.Tx) error {
		all, err := metadata.AllTx[Endpoint](tx, endpointsBucket)
		if err != nil {
			return err
		}
		used := map[netip.Addr]bool{}
		inUse := map[portKey]bool{}
		byName := map[string]*Endpoint{}
		for _, o := range all {
			if o.NetworkID == n.ID {
				used[o.IP] = true
				byName[o.ContainerName] = o
			}
			for _, m := range o.Ports {
				inUse[portKey{m.Proto, m.HostIP, m.HostPort}] = true
			}
		}
		if es != nil && es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
			if n.Name == DefaultNetwork {
				return errdefs.Invalidf("user specified IP address is supported only when connecting to networks with user configured subnets")
			}
			if err := checkIP(es.IPAMConfig.IPv4Address, n.Subnet, n.Gateway, used); err != nil {
				return err
			}
			ep.IP = es.IPAMConfig.IPv4Address
		} else if ep.IP, err = allocateIP(n.Subnet, n.IPRange, n.Gateway, used); err != nil {
			return err
		}
		ep.MAC = macFor(ep.IP).String()
		if primary {
			if ep.Ports, err = resolvePorts(req.Ports, req.Exposed, req.PublishAll, inUse); err != nil {
				return err
			}
			for _, l := range req.Links {
				name, alias, _ := strings.Cut(l, ":")
				name = strings.TrimPrefix(name, "/")
				if i := strings.LastIndex(alias, "/"); i >= 0 {
					alias = alias[i+1:]
				}
				o := byName[name]
				if o == nil {
					return errdefs.Invalidf("could not get container for link %s: not running on network %s", name, n.Name)
				}
				line := o.IP.String() + "\t"
				if alias != "" && alias != name {
					line += alias + " "
				}
				ep.Links = append(ep.Links, line+name)
			}
		}
		return metadata.PutTx(tx, endpointsBucket, endpointKey(ep.ContainerID, n.ID), ep)
	})
	if err != nil {
		return nil, err
	}
	gw := n.Gateway
	if !primary || n.Internal {
		gw = netip.Addr{}
	}
	plug := func() error { return s.host.plug(ep.NetNS, n.Bridge, ep.Veth, ifname, ep.IP, n.Subnet, gw) }
	if pre != nil {
		plug = func() error { return s.host.plugPooled(*pre, n.Bridge, ifname, ep.IP, n.Subnet, gw) }
	}
	if err := plug(); err != nil {
		metadata.Delete(s.cfg.State, endpointsBucket, endpointKey(ep.ContainerID, n.ID))
		return nil, err
	}
	log.From(ctx).Debug("endpoint", "container", req.ContainerID, "network", n.Name, "ip", ep.IP)
	return ep, nil
}

// Detach removes a container's endpoints, its namespace, its published
// ports and its addresses. A container with none is fine.
func (s *Service) Detach(ctx context.Context, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return s.detachLocked(ctx, containerID)
}

func (s *Service) detachLocked(ctx context.Context, containerID string) error {
	eps, err := s.ContainerEndpoints(containerID)
	if err != nil {
		return err
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// The path of a namespace made for this container goes at once: its
	// next start may make it again. A pool entry's path is unique.
	own := s.netnsPath(containerID)
	var veths, pooled []string
	for _, ep := range eps {
		veths = append(veths, ep.Veth)
		keep(metadata.Delete(s.cfg.State, endpointsBucket, endpointKey(ep.ContainerID, ep.NetworkID)))
		if ep.NetNS != own && !slices.Contains(pooled, ep.NetNS) {
			pooled = append(pooled, ep.NetNS)
		}
		if n, err := s.Get(ep.NetworkID); err == nil {
			s.publish(n, events.ActionDisconnect, map[string]string{"container": containerID})
		}
	}
	keep(removeNetNS(own))
	s.removeLater(ctx, veths, pooled)
	if len(eps) > 0 {
		keep(s.applyLocked())
	}
	if firstErr != nil {
		log.From(ctx).Warn("detaching a container from its networks", "container", containerID, "err", firstErr)
	}
	return firstErr
}

// removeLater deletes veths and unmounts pool entries' namespaces in the
// background. The addresses and ports are free at once (the records are
// gone), and neither name comes back: a veth's name hashes container and
// network IDs or is a pool entry's random one, and so is a pool entry's
// path. The kernel takes an RCU grace period (about 20 ms) to delete a
// veth. What a crash leaves undone, the next daemon start removes: neither
// is in the store any more.
func (s *Service) removeLater(ctx context.Context, veths, namespaces []string) {
	if len(veths) == 0 && len(namespaces) == 0 {
		return
	}
	s.cleanup.Add(1)
	go func() {
		defer s.cleanup.Done()
		for _, p := range namespaces {
			if err := removeNetNS(p); err != nil {
				log.From(ctx).Warn("removing a network namespace", "path", p, "err", err)
			}
		}
		if len(veths) == 0 {
			return
		}
		nl, err := s.host.handle()
		if err != nil {
			log.From(ctx).Warn("deleting veths", "links", veths, "err", err)
			return
		}
		defer nl.Close()
		for _, name := range veths {
			if err := deleteLinkWith(nl, name); err != nil {
				log.From(ctx).Warn("deleting a veth", "link", name, "err", err)
			}
		}
	}()
}

// ConnectRequest is `docker network connect` for a running container.
type ConnectRequest struct {
	ContainerID string
	Name        string
	Hostname    string
	Settings    *network.EndpointSettings
}

// Connect attaches a running container to one more network.
func (s *Service) Connect(ctx context.Context, netRef string, req ConnectRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	n, err := s.Get(netRef)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return errdefs.Forbidden(fmt.Errorf("container cannot be disconnected from host network or connected to %s network", n.Name))
	}
	eps, err := s.ContainerEndpoints(req.ContainerID)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return errdefs.Forbidden(fmt.Errorf("container %s has no network namespace of its own to connect (network mode host, none or container)", req.Name))
	}
	taken := map[string]bool{}
	for _, ep := range eps {
		if ep.NetworkID == n.ID {
			return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", req.Name, n.Name))
		}
		taken[ep.IfName] = true
	}
	ifname := ""
	for i := 0; ; i++ {
		if ifname = fmt.Sprintf("eth%d", i); !taken[ifname] {
			break
		}
	}
	ar := AttachRequest{ContainerID: req.ContainerID, Name: req.Name, Hostname: req.Hostname, DNS: eps[0].Upstream}
	if _, err := s.plugLocked(ctx, n, ar, req.Settings, eps[0].NetNS, nil, ifname, false); err != nil {
		return err
	}
	s.publish(n, events.ActionConnect, map[string]string{"container": req.ContainerID})
	return nil
}

// Disconnect takes a running container off a network.
func (s *Service) Disconnect(ctx context.Context, netRef, containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	n, err := s.Get(netRef)
	if err != nil {
		return err
	}
	eps, err := s.ContainerEndpoints(containerID)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.NetworkID != n.ID {
			continue
		}
		if err := unplugIn(ep.NetNS, ep.IfName); err != nil {
			return err
		}
		s.host.deleteLink(ep.Veth)
		if err := metadata.Delete(s.cfg.State, endpointsBucket, endpointKey(containerID, n.ID)); err != nil {
			return err
		}
		s.publish(n, events.ActionDisconnect, map[string]string{"container": containerID})
		return s.applyLocked()
	}
	return errdefs.NotFoundf("container %s is not connected to network %s", containerID, n.Name)
}

// Attached returns the IDs of the containers that have endpoints, each
// once. After a daemon restart the caller detaches those that no longer
// run, each under its own container lock, so a start in progress (which
// attaches before its process runs) is never swept.
func (s *Service) Attached() ([]string, error) {
	eps, err := s.Endpoints("")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, ep := range eps {
		if !slices.Contains(ids, ep.ContainerID) {
			ids = append(ids, ep.ContainerID)
		}
	}
	return ids, nil
}

// Settings is the NetworkSettings of a container's inspect.
func (s *Service) Settings(containerID string) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
	eps, err := s.ContainerEndpoints(containerID)
	if err != nil || len(eps) == 0 {
		return ns
	}
	ns.SandboxID = containerID
	ns.SandboxKey = eps[0].NetNS
	ns.Ports = network.PortMap{}
	for _, ep := range eps {
		n, err := s.Get(ep.NetworkID)
		if err != nil {
			continue
		}
		mac := network.HardwareAddr(macFor(ep.IP))
		ns.Networks[n.Name] = &network.EndpointSettings{
			NetworkID: n.ID, EndpointID: ep.ID, Gateway: n.Gateway, IPAddress: ep.IP, IPPrefixLen: n.Subnet.Bits(),
			MacAddress: mac, Aliases: ep.Aliases, DNSNames: ep.DNSNames,
		}
		for _, m := range ep.Ports {
			p, _ := network.PortFrom(m.ContainerPort, network.IPProtocol(m.Proto))
			ns.Ports[p] = append(ns.Ports[p], network.PortBinding{HostIP: m.HostIP, HostPort: fmt.Sprint(m.HostPort)})
		}
	}
	return ns
}
