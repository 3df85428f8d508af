package container

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/internal/errdefs"
)

// Command is the COMMAND column of `docker ps`: the process and its
// arguments, quoted where an argument has spaces.
func (c *Container) Command() string {
	parts := make([]string, 0, 1+len(c.Args))
	for _, p := range append([]string{c.Path}, c.Args...) {
		if p == "" || strings.ContainsAny(p, " \t\n\"'") {
			p = strconv.Quote(p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// Summary is the container as `GET /containers/json` lists it.
func (c *Container) Summary(now time.Time) container.Summary {
	s := container.Summary{
		ID:      c.ID,
		Names:   []string{"/" + c.Name},
		Image:   c.ImageRef,
		ImageID: c.Image,
		Command: c.Command(),
		Created: c.Created.Unix(),
		Labels:  map[string]string{},
		State:   container.ContainerState(c.State.Status),
		Status:  c.State.Describe(now),
		Ports:   []container.PortSummary{},
		Mounts:  []container.MountPoint{},
	}
	if c.Config != nil && c.Config.Labels != nil {
		s.Labels = c.Config.Labels
	}
	if c.HostConfig != nil {
		s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	s.NetworkSettings = &container.NetworkSettingsSummary{}
	return s
}

// ListOptions are `docker ps` flags, as the Engine API carries them.
type ListOptions struct {
	All     bool
	Limit   int // the N newest; 0 or less: no limit
	Filters map[string][]string
}

// psFilters are the filters `docker ps` knows; others are refused.
var psFilters = []string{"id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume", "network", "publish", "expose", "health", "isolation", "is-task"}

// PSFilters names the filters List accepts, for the API's validation.
func PSFilters() []string { return psFilters }

var validStatus = map[string]bool{"created": true, "restarting": true, "running": true, "removing": true, "paused": true, "exited": true, "dead": true}

// selectContainers applies opts to all (newest first) with Docker's rules:
// without All, only live containers; a status, exited or limit filter
// implies All. lookup resolves the containers that before and since name.
func selectContainers(all []*Container, opts ListOptions, lookup func(string) (*Container, error), imageMatches func(c *Container, ref string) bool) ([]*Container, error) {
	f := opts.Filters
	for _, st := range f["status"] {
		if !validStatus[st] {
			return nil, errdefs.Invalidf("invalid filter 'status=%s'", st)
		}
	}
	var exitCodes []int
	for _, v := range f["exited"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.Invalidf("invalid filter 'exited=%s'", v)
		}
		exitCodes = append(exitCodes, n)
	}
	var names []*regexp.Regexp
	for _, v := range f["name"] {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, errdefs.Invalidf("invalid filter 'name=%s': %v", v, err)
		}
		names = append(names, re)
	}
	var before, since *Container
	for key, dst := range map[string]**Container{"before": &before, "since": &since} {
		for _, v := range f[key] {
			c, err := lookup(v)
			if err != nil {
				return nil, err
			}
			*dst = c
		}
	}
	for _, v := range f["is-task"] {
		if v != "true" && v != "false" {
			return nil, errdefs.Invalidf("invalid filter 'is-task=%s'", v)
		}
	}
	showAll := opts.All || len(f["status"]) > 0 || len(exitCodes) > 0 || opts.Limit > 0

	var out []*Container
	for _, c := range all {
		if !showAll && !c.Running() && c.State.Status != StatusRestarting {
			continue
		}
		if before != nil && !c.Created.Before(before.Created) {
			continue
		}
		if since != nil && !c.Created.After(since.Created) {
			continue
		}
		if !match(f["id"], func(v string) bool { return strings.HasPrefix(c.ID, v) }) ||
			!matchRegexps(names, "/"+c.Name) ||
			!match(f["status"], func(v string) bool { return string(c.State.Status) == v }) ||
			!match(f["label"], func(v string) bool { return hasLabel(c, v) }) ||
			!match(f["ancestor"], func(v string) bool { return imageMatches(c, v) }) ||
			!match(f["is-task"], func(v string) bool { return v == "false" }) {
			continue
		}
		if len(exitCodes) > 0 {
			if c.State.Status != StatusExited || !containsInt(exitCodes, c.State.ExitCode) {
				continue
			}
		}
		if !match(f["health"], func(v string) bool { return healthStatus(c) == v }) {
			continue
		}
		// Volumes, networks and ports arrive with their services; until
		// then a filter on them matches nothing, rather than everything.
		if len(f["volume"]) > 0 || len(f["network"]) > 0 || len(f["publish"]) > 0 || len(f["expose"]) > 0 {
			continue
		}
		out = append(out, c)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// match is true when values is empty or any value satisfies ok.
func match(values []string, ok func(string) bool) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		if ok(v) {
			return true
		}
	}
	return false
}

func matchRegexps(res []*regexp.Regexp, s string) bool {
	if len(res) == 0 {
		return true
	}
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func hasLabel(c *Container, filter string) bool {
	if c.Config == nil {
		return false
	}
	k, want, hasValue := strings.Cut(filter, "=")
	got, ok := c.Config.Labels[k]
	return ok && (!hasValue || got == want)
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}
