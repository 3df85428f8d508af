// Package network gives containers Docker's networking: the default bridge
// network, user-defined bridge networks with an embedded DNS server,
// published ports and isolation between networks, built on netlink and
// nftables (berth's own table), with IPAM kept in the metadata store.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/metadata"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Buckets of the metadata store.
const (
	networksBucket  = "networks"
	endpointsBucket = "endpoints"
)

// The predefined networks, as Docker names them.
const (
	DefaultNetwork = "bridge"
	HostNetwork    = "host"
	NoneNetwork    = "none"
	DefaultBridge  = "berth0"
)

// Network is a network's record.
type Network struct {
	ID       string
	Name     string
	Driver   string // bridge, host or null
	Bridge   string // the bridge interface (bridge driver)
	Subnet   netip.Prefix
	IPRange  netip.Prefix
	Gateway  netip.Addr
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	Created  time.Time
}

// Predefined reports whether the network is one of bridge, host, none.
func (n *Network) Predefined() bool {
	return n.Name == DefaultNetwork || n.Name == HostNetwork || n.Name == NoneNetwork
}

// userDefined reports whether containers on it get the embedded DNS.
func (n *Network) userDefined() bool { return n.Driver == "bridge" && n.Name != DefaultNetwork }

// Endpoint is a container's attachment to one network: the record is the
// IP allocation, so IPAM is exactly the set of endpoint records.
type Endpoint struct {
	ID            string // random, as Docker's EndpointID
	ContainerID   string
	ContainerName string
	NetworkID     string
	IfName        string // inside the container: eth0, eth1, ...
	Veth          string // host side
	IP            netip.Addr
	MAC           string
	NetNS         string   // the namespace's bind mount
	Aliases       []string // --network-alias, compose service names
	DNSNames      []string // every name it answers to on the network
	Ports         []Mapping
	Upstream      []string // resolvers for names the network does not know
	Links         []string // legacy --link name:alias
}

func endpointKey(containerID, networkID string) string { return containerID + "/" + networkID }

// Config is what the service is built from.
type Config struct {
	DB *metadata.DB // networks
	// State holds the endpoints: which container is on which network with
	// which address and ports. They live as long as the containers' network
	// namespaces, so no longer than a boot (metadata.OpenState).
	State    *metadata.DB
	ExecRoot string // netns/<container id> are the containers' namespaces
	// HostNetNS names the namespace that plays the host: where bridges,
	// veths, rules and DNS servers live. Empty means the daemon's own;
	// tests give a fresh one.
	HostNetNS string
	Events    *eventbus.Bus // may be nil
	// ResolvConf is the host's resolver configuration (default
	// /etc/resolv.conf): the upstream of the embedded DNS.
	ResolvConf string
	// PoolSize is how many network namespaces with a veth are kept ready
	// for the next starts (pool.go); 0 makes them on each start.
	PoolSize int
}

// Service owns the networks and the containers' endpoints on them.
type Service struct {
	cfg  Config
	host *host

	mu sync.Mutex // serializes changes; guards dns, applied and closed
	// closed is set by Close: changes fail from then on.
	closed bool
	// dns are the embedded DNS servers of user-defined networks, by ID.
	dns map[string]*dnsServer
	// applied is the ruleset last applied ("" before the first): a change
	// that leaves the rules as they are (most attaches) costs no netlink.
	applied string
	// cleanup runs veth deletions off the caller's path: the kernel takes
	// an RCU grace period (about 20 ms) to delete a veth.
	cleanup sync.WaitGroup

	// The warm pool (pool.go): ready entries, a nudge to refill, and the
	// filler's stop and done.
	pool     chan pooledNS
	poolWake chan struct{}
	poolStop chan struct{}
	poolDone chan struct{}
}

// New opens the service: it makes sure the predefined networks exist and
// reconciles the kernel with the store: bridges, veths, namespaces and
// rules that the store does not know are removed, and what it knows is
// (re)made.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	h, err := openHost(cfg.HostNetNS)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, host: h, dns: map[string]*dnsServer{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := h.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return nil, err
	}
	if err := s.ensurePredefined(ctx); err != nil {
		return nil, err
	}
	if err := s.moveEndpoints(); err != nil {
		return nil, err
	}
	if err := s.reconcile(ctx); err != nil {
		return nil, err
	}
	if cfg.PoolSize > 0 {
		s.pool, s.poolWake = make(chan pooledNS, cfg.PoolSize), make(chan struct{}, 1)
		s.poolStop, s.poolDone = make(chan struct{}), make(chan struct{})
		go s.fillPool(context.WithoutCancel(ctx), s.poolStop)
	}
	return s, nil
}

// Close stops the DNS servers. Bridges, endpoints and rules stay: running
// containers keep their network while the daemon is away.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true // from now on every change fails, so no new work starts
	s.mu.Unlock()
	if s.poolStop != nil {
		close(s.poolStop)
		<-s.poolDone
	}
	s.cleanup.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.dns {
		d.close()
		delete(s.dns, id)
	}
	if s.host != nil {
		s.host.close()
	}
}

// errClosed is what a change gets once the daemon shuts down.
var errClosed = errdefs.Unavailable(errors.New("the network service is shutting down"))

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) netnsPath(containerID string) string {
	return filepath.Join(s.cfg.ExecRoot, "netns", containerID)
}

func (s *Service) ensurePredefined(ctx context.Context) error {
	nets, err := metadata.All[Network](s.cfg.DB, networksBucket)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	var taken []netip.Prefix
	for _, n := range nets {
		have[n.Name] = true
		if n.Subnet.IsValid() {
			taken = append(taken, n.Subnet)
		}
	}
	now := time.Now().UTC()
	if !have[DefaultNetwork] {
		routes, err := s.foreignRoutes(nets)
		if err != nil {
			return err
		}
		subnet, err := chooseSubnet(append(taken, routes...))
		if err != nil {
			return err
		}
		n := &Network{ID: newID(), Name: DefaultNetwork, Driver: "bridge", Bridge: DefaultBridge, Subnet: subnet,
			Gateway: firstHost(subnet), Created: now,
			Options: map[string]string{"com.docker.network.bridge.name": DefaultBridge, "com.docker.network.bridge.default_bridge": "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.driver.mtu": "1500"}}
		if err := metadata.Put(s.cfg.DB, networksBucket, n.ID, n); err != nil {
			return err
		}
		log.From(ctx).Info("default bridge network", "bridge", DefaultBridge, "subnet", subnet)
	}
	for name, driver := range map[string]string{HostNetwork: "host", NoneNetwork: "null"} {
		if !have[name] {
			n := &Network{ID: newID(), Name: name, Driver: driver, Created: now}
			if err := metadata.Put(s.cfg.DB, networksBucket, n.ID, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// foreignRoutes are the host's routes, except those through berth's own
// bridges.
func (s *Service) foreignRoutes(nets []*Network) ([]netip.Prefix, error) {
	routes, err := s.host.routes()
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	return slices.DeleteFunc(routes, func(r netip.Prefix) bool {
		return slices.ContainsFunc(nets, func(n *Network) bool { return n.Subnet == r })
	}), nil
}

// moveEndpoints moves endpoint records that an older daemon kept in the
// durable store into the state store, so that an upgrade keeps the
// running containers' networks.
func (s *Service) moveEndpoints() error {
	old, err := metadata.All[Endpoint](s.cfg.DB, endpointsBucket)
	if err != nil || len(old) == 0 {
		return err
	}
	if err := s.cfg.State.Update(func(tx *metadata.Tx) error {
		for _, ep := range old {
			if err := metadata.PutTx(tx, endpointsBucket, endpointKey(ep.ContainerID, ep.NetworkID), ep); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return s.cfg.DB.Update(func(tx *metadata.Tx) error {
		for _, ep := range old {
			if err := metadata.DeleteTx(tx, endpointsBucket, endpointKey(ep.ContainerID, ep.NetworkID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// reconcile makes the kernel match the store. Preconditions: none of the
// service's methods run yet (New), or s.mu is held.
func (s *Service) reconcile(ctx context.Context) error {
	nets, err := metadata.All[Network](s.cfg.DB, networksBucket)
	if err != nil {
		return err
	}
	eps, err := metadata.All[Endpoint](s.cfg.State, endpointsBucket)
	if err != nil {
		return err
	}
	bridges, veths, nsFiles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, n := range nets {
		if n.Driver != "bridge" {
			continue
		}
		bridges[n.Bridge] = true
		if err := s.host.ensureBridge(n.Bridge, n.Gateway, n.Subnet); err != nil {
			return err
		}
	}
	// An endpoint whose namespace is gone (a reboot, a lost mount) is dead:
	// drop it and its allocation.
	for _, ep := range eps {
		if _, err := os.Stat(ep.NetNS); err != nil || !isNetNSMount(ep.NetNS) {
			log.From(ctx).Info("removing an endpoint whose namespace is gone", "container", ep.ContainerID, "network", ep.NetworkID)
			s.host.deleteLink(ep.Veth)
			removeNetNS(ep.NetNS)
			metadata.Delete(s.cfg.State, endpointsBucket, endpointKey(ep.ContainerID, ep.NetworkID))
			continue
		}
		veths[ep.Veth] = true
		nsFiles[filepath.Base(ep.NetNS)] = true
	}
	links, err := s.host.links()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		stale := (strings.HasPrefix(l, vethPrefix) && !veths[l]) ||
			((l == DefaultBridge || strings.HasPrefix(l, bridgePrefix+"-")) && !bridges[l])
		if stale {
			log.From(ctx).Info("removing a stale interface", "link", l)
			if err := s.host.deleteLink(l); err != nil {
				log.From(ctx).Warn("removing a stale interface", "link", l, "err", err)
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.cfg.ExecRoot, "netns")); err == nil {
		for _, e := range ents {
			if !nsFiles[e.Name()] {
				log.From(ctx).Info("removing a stale network namespace", "container", e.Name())
				removeNetNS(filepath.Join(s.cfg.ExecRoot, "netns", e.Name()))
			}
		}
	}
	if err := s.applyLocked(); err != nil {
		return err
	}
	if added, err := allowThroughDocker(s.host.fd); err != nil {
		log.From(ctx).Warn("Docker's FORWARD policy may drop berth's traffic", "err", err)
	} else if added {
		log.From(ctx).Info("Docker's iptables FORWARD chain found: berth's bridges allowed in DOCKER-USER")
	}
	for _, n := range nets {
		if n.userDefined() {
			s.startDNS(ctx, n)
		}
	}
	return nil
}

// isNetNSMount reports whether path is an nsfs bind mount.
func isNetNSMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// applyLocked recomputes berth's table from the store and applies it.
// Preconditions: s.mu is held, or New runs.
func (s *Service) applyLocked() error {
	nets, err := metadata.All[Network](s.cfg.DB, networksBucket)
	if err != nil {
		return err
	}
	eps, err := metadata.All[Endpoint](s.cfg.State, endpointsBucket)
	if err != nil {
		return err
	}
	rs := ComputeRules(ruleInput(nets, eps))
	text := rs.String()
	if text == s.applied {
		return nil
	}
	if err := applyRules(s.host.fd, rs, s.applied == ""); err != nil {
		s.applied = "" // unknown state: replace it all next time
		return err
	}
	s.applied = text
	return nil
}

func ruleInput(nets []*Network, eps []*Endpoint) RuleInput {
	var in RuleInput
	for _, n := range nets {
		if n.Driver == "bridge" {
			in.Networks = append(in.Networks, RuleNetwork{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
		}
	}
	for _, ep := range eps {
		if len(ep.Ports) > 0 {
			in.Endpoints = append(in.Endpoints, RuleEndpoint{Container: ep.ContainerName, IP: ep.IP, Ports: ep.Ports})
		}
	}
	return in
}

// CreateOptions are `docker network create` flags.
type CreateOptions struct {
	Name     string
	Driver   string // "" or bridge
	Subnet   string
	IPRange  string
	Gateway  string
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	// CheckDuplicate is implied: names are unique.
}

// Create makes a user-defined bridge network.
func (s *Service) Create(ctx context.Context, opts CreateOptions) (_ *Network, err error) {
	if opts.Name == "" {
		return nil, errdefs.Invalidf("network name must not be empty")
	}
	if !validName(opts.Name) {
		return nil, errdefs.Invalidf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", opts.Name)
	}
	switch opts.Driver {
	case "", "bridge":
	default:
		return nil, errdefs.NotImplemented(fmt.Errorf("network driver %q is not supported (bridge only)", opts.Driver))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	nets, err := metadata.All[Network](s.cfg.DB, networksBucket)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Name == opts.Name {
			return nil, errdefs.Conflictf("network with name %s already exists", opts.Name)
		}
	}
	id := newID()
	n := &Network{ID: id, Name: opts.Name, Driver: "bridge", Bridge: bridgePrefix + "-" + id[:9], Internal: opts.Internal,
		Labels: opts.Labels, Options: opts.Options, Created: time.Now().UTC()}
	if name := opts.Options["com.docker.network.bridge.name"]; name != "" {
		if len(name) > 15 {
			return nil, errdefs.Invalidf("bridge name %q is longer than 15 characters", name)
		}
		n.Bridge = name
	}
	var taken []netip.Prefix
	for _, o := range nets {
		if o.Subnet.IsValid() {
			taken = append(taken, o.Subnet)
		}
	}
	if opts.Subnet != "" {
		p, err := netip.ParsePrefix(opts.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, errdefs.Invalidf("invalid subnet %q: want an IPv4 CIDR like 10.1.0.0/24", opts.Subnet)
		}
		if p.Bits() > 30 {
			return nil, errdefs.Invalidf("invalid subnet %s: too small (at most /30)", p)
		}
		n.Subnet = p.Masked()
		for _, o := range nets {
			if o.Subnet.IsValid() && o.Subnet.Overlaps(n.Subnet) {
				return nil, errdefs.Conflictf("invalid pool request: Pool overlaps with other one on this address space (subnet %s of network %s)", o.Subnet, o.Name)
			}
		}
	} else {
		if opts.Gateway != "" || opts.IPRange != "" {
			return nil, errdefs.Invalidf("--gateway and --ip-range need --subnet")
		}
		routes, err := s.foreignRoutes(nets)
		if err != nil {
			return nil, err
		}
		if n.Subnet, err = chooseSubnet(append(taken, routes...)); err != nil {
			return nil, err
		}
	}
	if opts.IPRange != "" {
		r, err := netip.ParsePrefix(opts.IPRange)
		if err != nil || !n.Subnet.Contains(r.Addr()) || r.Bits() < n.Subnet.Bits() {
			return nil, errdefs.Invalidf("invalid ip range %q: not inside subnet %s", opts.IPRange, n.Subnet)
		}
		n.IPRange = r.Masked()
	}
	n.Gateway = firstHost(n.Subnet)
	if opts.Gateway != "" {
		gw, err := netip.ParseAddr(opts.Gateway)
		if err != nil || !n.Subnet.Contains(gw) || gw == n.Subnet.Masked().Addr() || gw == broadcast(n.Subnet) {
			return nil, errdefs.Invalidf("invalid gateway %q: not a host address of subnet %s", opts.Gateway, n.Subnet)
		}
		n.Gateway = gw
	}
	if err := metadata.Put(s.cfg.DB, networksBucket, n.ID, n); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.host.deleteBridge(n.Bridge)
			metadata.Delete(s.cfg.DB, networksBucket, n.ID)
			s.applyLocked()
		}
	}()
	if err := s.host.ensureBridge(n.Bridge, n.Gateway, n.Subnet); err != nil {
		return nil, err
	}
	if err := s.applyLocked(); err != nil {
		return nil, err
	}
	s.startDNS(ctx, n)
	s.publish(n, events.ActionCreate, nil)
	return n, nil
}

func validName(name string) bool {
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '_' || r == '.' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

// List returns every network.
func (s *Service) List(ctx context.Context) ([]*Network, error) {
	return metadata.All[Network](s.cfg.DB, networksBucket)
}

// Get finds a network by full ID, name or ID prefix, as Docker does (in
// that order).
func (s *Service) Get(ref string) (*Network, error) {
	nets, err := metadata.All[Network](s.cfg.DB, networksBucket)
	if err != nil {
		return nil, err
	}
	return findNetwork(nets, ref)
}

func findNetwork(nets []*Network, ref string) (*Network, error) {
	if ref == "default" { // the docker CLI's name for the default network mode
		ref = DefaultNetwork
	}
	if ref == "" {
		return nil, errdefs.NotFoundf("network %q not found", ref)
	}
	for _, n := range nets {
		if n.ID == ref {
			return n, nil
		}
	}
	for _, n := range nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var match []*Network
	for _, n := range nets {
		if strings.HasPrefix(n.ID, ref) {
			match = append(match, n)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errdefs.NotFoundf("network %s not found", ref)
	}
	return nil, errdefs.Invalidf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(match))
}

// Endpoints returns the endpoints on network id, or every endpoint when
// id is empty.
func (s *Service) Endpoints(networkID string) ([]*Endpoint, error) {
	eps, err := metadata.All[Endpoint](s.cfg.State, endpointsBucket)
	if err != nil {
		return nil, err
	}
	if networkID == "" {
		return eps, nil
	}
	return slices.DeleteFunc(eps, func(e *Endpoint) bool { return e.NetworkID != networkID }), nil
}

// ContainerEndpoints returns the endpoints of a container.
func (s *Service) ContainerEndpoints(containerID string) ([]*Endpoint, error) {
	eps, err := metadata.All[Endpoint](s.cfg.State, endpointsBucket)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(eps, func(e *Endpoint) bool { return e.ContainerID != containerID }), nil
}

// Remove deletes a user-defined network with no endpoints.
func (s *Service) Remove(ctx context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	n, err := s.Get(ref)
	if err != nil {
		return err
	}
	return s.removeLocked(ctx, n)
}

func (s *Service) removeLocked(ctx context.Context, n *Network) error {
	if n.Predefined() {
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	eps, err := s.Endpoints(n.ID)
	if err != nil {
		return err
	}
	if len(eps) > 0 {
		return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s has active endpoints (%s)", n.Name, eps[0].ContainerName))
	}
	if d := s.dns[n.ID]; d != nil {
		d.close()
		delete(s.dns, n.ID)
	}
	if err := metadata.Delete(s.cfg.DB, networksBucket, n.ID); err != nil {
		return err
	}
	if err := s.applyLocked(); err != nil {
		return err
	}
	if err := s.host.deleteBridge(n.Bridge); err != nil {
		return err
	}
	s.publish(n, events.ActionDestroy, nil)
	return nil
}

// Prune removes the user-defined networks without endpoints that match
// keep, and returns their names.
func (s *Service) Prune(ctx context.Context, match func(*Network) bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	nets, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nets {
		if n.Predefined() || (match != nil && !match(n)) {
			continue
		}
		eps, err := s.Endpoints(n.ID)
		if err != nil || len(eps) > 0 {
			continue
		}
		if err := s.removeLocked(ctx, n); err != nil {
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}

func (s *Service) publish(n *Network, action events.Action, extra map[string]string) {
	if s.cfg.Events == nil {
		return
	}
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	maps.Copy(attrs, extra)
	s.cfg.Events.Publish(eventbus.Message{Type: events.NetworkEventType, Action: action, Actor: events.Actor{ID: n.ID, Attributes: attrs}})
}
