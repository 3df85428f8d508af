package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth/berth/internal/errdefs"
)

func newNetworkCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "network COMMAND", Short: "Manage networks", Args: cobra.NoArgs}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkLsCommand(c), newNetworkInspectCommand(c), newNetworkRmCommand(c),
		newNetworkPruneCommand(c), newNetworkConnectCommand(c), newNetworkDisconnectCommand(c))
	return cmd
}

func newNetworkCreateCommand(c *CLI) *cobra.Command {
	var driver, subnet, gateway, ipRange string
	var internal bool
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			req := network.CreateRequest{Name: args[0], Driver: driver, Internal: internal}
			if req.Options, err = keyValues("opt", opts); err != nil {
				return err
			}
			if req.Labels, err = keyValues("label", labels); err != nil {
				return err
			}
			if subnet != "" || gateway != "" || ipRange != "" {
				var ic network.IPAMConfig
				if subnet != "" {
					if ic.Subnet, err = netip.ParsePrefix(subnet); err != nil {
						return errdefs.Invalidf("invalid --subnet %q: %v", subnet, err)
					}
				}
				if gateway != "" {
					if ic.Gateway, err = netip.ParseAddr(gateway); err != nil {
						return errdefs.Invalidf("invalid --gateway %q: %v", gateway, err)
					}
				}
				if ipRange != "" {
					if ic.IPRange, err = netip.ParsePrefix(ipRange); err != nil {
						return errdefs.Invalidf("invalid --ip-range %q: %v", ipRange, err)
					}
				}
				req.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{ic}}
			}
			resp, err := cl.NetworkCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, resp.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "bridge", "driver to manage the network")
	f.StringVar(&subnet, "subnet", "", "subnet in CIDR format")
	f.StringVar(&gateway, "gateway", "", "IPv4 gateway for the subnet")
	f.StringVar(&ipRange, "ip-range", "", "allocate container IPs from a sub-range")
	f.BoolVar(&internal, "internal", false, "restrict external access to the network")
	stringArrayVarP(f, &opts, "opt", "o", nil, "set driver specific options")
	stringArrayVar(f, &labels, "label", nil, "set metadata on a network")
	return cmd
}

func newNetworkLsCommand(c *CLI) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := filterFlags(filters)
			if err != nil {
				return err
			}
			nets, err := cl.NetworkList(cmd.Context(), f)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, n := range nets {
					fmt.Fprintln(c.out, n.ID[:12])
				}
			case format != "":
				if err := templateEach(c, format, nets); err != nil {
					return err
				}
			default:
				tw := tabwriter.NewWriter(c.out, 0, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
				for _, n := range nets {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID[:12], n.Name, n.Driver, n.Scope)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	stringArrayVarP(cmd.Flags(), &filters, "filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")
	cmd.Flags().StringVar(&format, "format", "", "format output using a custom template")
	return cmd
}

func newNetworkInspectCommand(c *CLI) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.inspectEach(args, format, func(ref string) (any, error) { return cl.NetworkInspect(cmd.Context(), ref) })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a custom template")
	return cmd
}

func newNetworkRmCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(ref string) error {
				if err := cl.NetworkRemove(cmd.Context(), ref); err != nil {
					return err
				}
				fmt.Fprintln(c.out, ref)
				return nil
			})
		},
	}
}

func newNetworkPruneCommand(c *CLI) *cobra.Command {
	var filters []string
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f, err := filterFlags(filters)
			if err != nil {
				return err
			}
			rep, err := cl.NetworkPrune(cmd.Context(), f)
			if err != nil {
				return err
			}
			if len(rep.NetworksDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Networks:")
				for _, n := range rep.NetworksDeleted {
					fmt.Fprintln(c.out, n)
				}
			}
			return nil
		},
	}
	stringArrayVar(cmd.Flags(), &filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCommand(c *CLI) *cobra.Command {
	var aliases []string
	var ip string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			es := &network.EndpointSettings{Aliases: aliases}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return errdefs.Invalidf("invalid --ip %q: %v", ip, err)
				}
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
			}
			return cl.NetworkConnect(cmd.Context(), args[0], args[1], es)
		},
	}
	stringArrayVar(cmd.Flags(), &aliases, "alias", nil, "add network-scoped alias for the container")
	cmd.Flags().StringVar(&ip, "ip", "", "IPv4 address")
	return cmd
}

func newNetworkDisconnectCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return cl.NetworkDisconnect(cmd.Context(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}

// netOptions are the network flags of run and create.
type netOptions struct {
	network    string
	aliases    []string
	ip         string
	publish    []string
	publishAll bool
	expose     []string
	dns        []string
	dnsSearch  []string
	dnsOpts    []string
	addHosts   []string
	links      []string
}

func (o *netOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.network, "network", "", "connect a container to a network")
	f.StringVar(&o.network, "net", "", "connect a container to a network")
	f.MarkHidden("net")
	stringArrayVar(f, &o.aliases, "network-alias", nil, "add network-scoped alias for the container")
	f.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	stringArrayVarP(f, &o.publish, "publish", "p", nil, "publish a container's port(s) to the host")
	f.BoolVarP(&o.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	stringArrayVar(f, &o.expose, "expose", nil, "expose a port or a range of ports")
	stringArrayVar(f, &o.dns, "dns", nil, "set custom DNS servers")
	stringArrayVar(f, &o.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	stringArrayVar(f, &o.dnsOpts, "dns-option", nil, "set DNS options")
	stringArrayVar(f, &o.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	stringArrayVar(f, &o.links, "link", nil, "add link to another container")
}

// apply puts the network flags into a create request.
func (o *netOptions) apply(req *container.CreateRequest) error {
	hc, cfg := req.HostConfig, req.Config
	mode := o.network
	if mode == "" {
		mode = "bridge"
	}
	hc.NetworkMode = container.NetworkMode(mode)
	hc.PublishAllPorts = o.publishAll
	hc.DNSSearch, hc.DNSOptions, hc.Links = o.dnsSearch, o.dnsOpts, o.links
	for _, h := range o.addHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok || name == "" {
			return errdefs.Invalidf("invalid --add-host %q: want host:ip", h)
		}
		if ip != "host-gateway" {
			if _, err := netip.ParseAddr(strings.Trim(ip, "[]")); err != nil {
				return errdefs.Invalidf("invalid --add-host %q: %q is not an IP address", h, ip)
			}
		}
		hc.ExtraHosts = append(hc.ExtraHosts, name+":"+ip)
	}
	for _, d := range o.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return errdefs.Invalidf("invalid --dns %q: not an IP address", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	exposed, bindings, err := parsePublish(o.publish)
	if err != nil {
		return err
	}
	for _, e := range o.expose {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return errdefs.Invalidf("invalid --expose %q: %v", e, err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	if len(exposed) > 0 {
		cfg.ExposedPorts = exposed
	}
	if len(bindings) > 0 {
		hc.PortBindings = bindings
	}
	if len(o.aliases) > 0 || o.ip != "" {
		if hc.NetworkMode.IsHost() || hc.NetworkMode.IsNone() || hc.NetworkMode.IsContainer() || mode == "bridge" || mode == "default" {
			return errdefs.Invalidf("--ip and --network-alias need a user-defined network (--network)")
		}
		es := &network.EndpointSettings{Aliases: o.aliases}
		if o.ip != "" {
			a, err := netip.ParseAddr(o.ip)
			if err != nil || !a.Is4() {
				return errdefs.Invalidf("invalid --ip %q: not an IPv4 address", o.ip)
			}
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
		}
		req.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{mode: es}}
	}
	return nil
}

// parsePublish reads -p values, as docker does:
// [ip:][hostPort:]containerPort[/proto], where ports may be ranges
// ("8000-8010:80-90"; a host range with one container port lets the
// daemon pick one host port of the range).
func parsePublish(list []string) (network.PortSet, network.PortMap, error) {
	exposed, bindings := network.PortSet{}, network.PortMap{}
	for _, spec := range list {
		rest, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, nil, errdefs.Invalidf("invalid -p %q: unknown protocol %q", spec, proto)
		}
		var ip, hostPart, ctrPart string
		switch parts := splitPublish(rest); len(parts) {
		case 1:
			ctrPart = parts[0]
		case 2:
			hostPart, ctrPart = parts[0], parts[1]
		case 3:
			ip, hostPart, ctrPart = parts[0], parts[1], parts[2]
		default:
			return nil, nil, errdefs.Invalidf("invalid -p %q: want [ip:][hostPort:]containerPort[/protocol]", spec)
		}
		var hostIP netip.Addr
		if ip != "" {
			a, err := netip.ParseAddr(strings.Trim(ip, "[]"))
			if err != nil {
				return nil, nil, errdefs.Invalidf("invalid -p %q: invalid IP address %q", spec, ip)
			}
			hostIP = a
		}
		cStart, cEnd, err := portRange(ctrPart)
		if err != nil || cStart == 0 {
			return nil, nil, errdefs.Invalidf("invalid -p %q: invalid container port %q", spec, ctrPart)
		}
		var hStart, hEnd uint16
		if hostPart != "" {
			if hStart, hEnd, err = portRange(hostPart); err != nil || hStart == 0 {
				return nil, nil, errdefs.Invalidf("invalid -p %q: invalid host port %q", spec, hostPart)
			}
		}
		n := int(cEnd - cStart)
		if hostPart != "" && n > 0 && int(hEnd-hStart) != n {
			return nil, nil, errdefs.Invalidf("invalid -p %q: host and container port ranges differ in size", spec)
		}
		for i := 0; i <= n; i++ {
			p, _ := network.PortFrom(cStart+uint16(i), network.IPProtocol(proto))
			exposed[p] = struct{}{}
			b := network.PortBinding{HostIP: hostIP}
			switch {
			case hostPart == "":
			case n == 0 && hEnd > hStart:
				b.HostPort = fmt.Sprintf("%d-%d", hStart, hEnd)
			default:
				b.HostPort = strconv.Itoa(int(hStart) + i)
			}
			bindings[p] = append(bindings[p], b)
		}
	}
	return exposed, bindings, nil
}

// splitPublish splits on colons outside an [IPv6] bracket.
func splitPublish(s string) []string {
	if strings.HasPrefix(s, "[") {
		if end := strings.Index(s, "]"); end > 0 {
			rest := strings.Split(strings.TrimPrefix(s[end+1:], ":"), ":")
			return append([]string{s[:end+1]}, rest...)
		}
	}
	return strings.Split(s, ":")
}

func portRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	b := a
	if ok {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return 0, 0, fmt.Errorf("bad range %q", s)
		}
	}
	return uint16(a), uint16(b), nil
}
