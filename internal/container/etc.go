package container

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// hostResolvConf is the host's resolver configuration, copied into
// containers.
var hostResolvConf = "/etc/resolv.conf"

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its directory, as Docker does, and returns their
// paths for the spec to bind in. att is the container's network, if any:
// its address names the host in /etc/hosts, its links are listed, and its
// embedded DNS server is the only nameserver.
func (s *Service) writeEtcFiles(c *Container, att *NetAttachment) (SpecFiles, error) {
	dir := s.dir(c.ID)
	hostname := ShortID(c.ID)
	if c.Config != nil && c.Config.Hostname != "" {
		hostname = c.Config.Hostname
	}
	f := SpecFiles{
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if c.HostConfig != nil {
		for _, h := range c.HostConfig.ExtraHosts {
			name, ip, ok := strings.Cut(h, ":")
			if ok {
				hosts += ip + "\t" + name + "\n"
			}
		}
	}
	if att != nil {
		for _, l := range att.Hosts {
			hosts += l + "\n"
		}
	}
	if att != nil && att.IP != "" {
		hosts += att.IP + "\t" + hostname + "\n"
	} else {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	for path, content := range map[string]string{
		f.HostnamePath:   hostname + "\n",
		f.HostsPath:      hosts,
		f.ResolvConfPath: resolvConf(c, att),
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return SpecFiles{}, err
		}
	}
	return f, nil
}

// resolvConf is the host's resolv.conf without loopback nameservers (they
// are not reachable from the container's network namespace), with the
// container's --dns, --dns-search and --dns-option applied.
// With an embedded DNS server (att.Nameserver) that is the only
// nameserver: it forwards to --dns or the host's resolvers.
func resolvConf(c *Container, att *NetAttachment) string {
	var out bytes.Buffer
	var dns, search, opts []string
	if c.HostConfig != nil {
		for _, a := range c.HostConfig.DNS {
			dns = append(dns, a.String())
		}
		search, opts = c.HostConfig.DNSSearch, c.HostConfig.DNSOptions
	}
	if att != nil && att.Nameserver != "" {
		dns = []string{att.Nameserver}
	}
	ownDNS := len(dns) > 0
	if b, err := os.ReadFile(hostResolvConf); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "nameserver":
				if !ownDNS && !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
					dns = append(dns, f[1])
				}
			case "search":
				if len(search) == 0 {
					search = f[1:]
				}
			case "options":
				if len(opts) == 0 {
					opts = f[1:]
				}
			}
		}
	}
	for _, d := range dns {
		out.WriteString("nameserver " + d + "\n")
	}
	if len(search) > 0 {
		out.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(opts) > 0 {
		out.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return out.String()
}
