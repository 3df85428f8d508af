// Package reference parses and normalises image references the way Docker
// does ("busybox" → "docker.io/library/busybox"): the grammar and the
// behaviour of github.com/distribution/reference, which FuzzAgainstDistribution
// checks this package against, written as plain string scanning. That
// package compiles a dozen large regular expressions when a program starts,
// and every berth process (the CLI, the runtime, the daemon) paid ~3 ms and
// 400 KB for them before main.
//
//	reference   := name [ ":" tag ] [ "@" digest ]
//	name        := [ domain "/" ] path              (the path at most 255 bytes)
//	domain      := host [ ":" port ]
//	host        := domain-component { "." domain-component } | "[" ipv6 "]"
//	domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//	path        := path-component { "/" path-component }
//	path-component := [a-z0-9]+ { separator [a-z0-9]+ }
//	separator   := "." | "_" | "__" | "-"+
//	tag         := [\w][\w.-]{0,127}
//	digest      := algorithm ":" [0-9a-fA-F]{32,}   (then checked by go-digest)
package reference

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The errors of a reference that does not parse; the messages are
// distribution/reference's, which Docker users see.
var (
	ErrReferenceInvalidFormat = errors.New("invalid reference format")
	ErrTagInvalidFormat       = errors.New("invalid tag format")
	ErrNameContainsUppercase  = errors.New("repository name must be lowercase")
	ErrNameEmpty              = errors.New("repository name must have at least one component")
	ErrNameTooLong            = fmt.Errorf("repository name must not be more than %d characters", nameTotalLengthMax)
	ErrNameNotCanonical       = errors.New("repository name must be canonical")
)

const (
	nameTotalLengthMax  = 255
	defaultDomain       = "docker.io"
	legacyDefaultDomain = "index.docker.io"
	officialRepoPrefix  = "library/"
)

// Named is a reference with a repository name.
type Named interface {
	String() string
	Name() string
}

// Tagged is a reference with a tag.
type Tagged interface {
	Named
	Tag() string
}

// Digested is a reference with a digest.
type Digested interface {
	Named
	Digest() digest.Digest
}

// Canonical is a name with a digest.
type Canonical interface {
	Named
	Digest() digest.Digest
}

// NamedTagged is a name with a tag.
type NamedTagged interface {
	Named
	Tag() string
}

// The four shapes, so that a type assertion tells what a reference has, as
// with distribution/reference.
type (
	repository struct{ domain, path string }
	tagged     struct {
		repository
		tag string
	}
	canonical struct {
		repository
		digest digest.Digest
	}
	full struct {
		repository
		tag    string
		digest digest.Digest
	}
)

func (r repository) Name() string {
	if r.domain == "" {
		return r.path
	}
	return r.domain + "/" + r.path
}
func (r repository) String() string       { return r.Name() }
func (r tagged) String() string           { return r.Name() + ":" + r.tag }
func (r tagged) Tag() string              { return r.tag }
func (r canonical) String() string        { return r.Name() + "@" + r.digest.String() }
func (r canonical) Digest() digest.Digest { return r.digest }
func (r full) String() string             { return r.Name() + ":" + r.tag + "@" + r.digest.String() }
func (r full) Tag() string                { return r.tag }
func (r full) Digest() digest.Digest      { return r.digest }

func repoOf(n Named) repository {
	switch r := n.(type) {
	case repository:
		return r
	case tagged:
		return r.repository
	case canonical:
		return r.repository
	case full:
		return r.repository
	}
	d, p := splitName(n.Name())
	return repository{d, p}
}

// shape returns the type that fits what is set.
func shape(repo repository, tag string, dgst digest.Digest) Named {
	switch {
	case tag == "" && dgst == "":
		return repo
	case dgst == "":
		return tagged{repo, tag}
	case tag == "":
		return canonical{repo, dgst}
	}
	return full{repo, tag, dgst}
}

// Parse parses s by the grammar above, without normalising.
func Parse(s string) (Named, error) {
	name, tag, dgst, ok := split(s)
	if !ok {
		if s == "" {
			return nil, ErrNameEmpty
		}
		if lower := strings.ToLower(s); lower != s {
			if _, _, _, ok := split(lower); ok {
				return nil, ErrNameContainsUppercase
			}
		}
		return nil, ErrReferenceInvalidFormat
	}
	domain, path := splitName(name)
	if len(path) > nameTotalLengthMax {
		return nil, ErrNameTooLong
	}
	var d digest.Digest
	if dgst != "" {
		var err error
		if d, err = digest.Parse(dgst); err != nil {
			return nil, err
		}
	}
	return shape(repository{domain, path}, tag, d), nil
}

// split cuts s into name, tag and digest and checks each one's syntax.
func split(s string) (name, tag, dgst string, ok bool) {
	name = s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, dgst = name[:i], name[i+1:]
		if !isDigest(dgst) {
			return "", "", "", false
		}
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.ContainsRune(name[i+1:], '/') {
		name, tag = name[:i], name[i+1:]
		if !isTag(tag) {
			return "", "", "", false
		}
	}
	return name, tag, dgst, isName(name)
}

// isName: a path, or a domain, "/" and a path.
func isName(s string) bool {
	if isPath(s) {
		return true
	}
	i := strings.IndexByte(s, '/')
	return i > 0 && isDomain(s[:i]) && isPath(s[i+1:])
}

// splitName cuts a valid name into domain and path: the first component is
// the domain when it is one and a path follows (the grammar prefers it).
func splitName(s string) (domain, path string) {
	if i := strings.IndexByte(s, '/'); i > 0 && isDomain(s[:i]) && isPath(s[i+1:]) {
		return s[:i], s[i+1:]
	}
	return "", s
}

func isPath(s string) bool {
	for {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			return isPathComponent(s)
		}
		if !isPathComponent(s[:i]) {
			return false
		}
		s = s[i+1:]
	}
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// isPathComponent: runs of [a-z0-9] joined by ".", "_", "__" or "-"+.
func isPathComponent(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); {
		if isLowerAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isLowerAlnum(s[j]) {
			j++
		}
		switch sep := s[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

// isDomain: a host (dot-separated components, or a bracketed IPv6 address)
// and an optional numeric port.
func isDomain(s string) bool {
	var port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 || strings.Trim(s[1:end], "0123456789abcdefABCDEF:") != "" {
			return false
		}
		port = s[end+1:]
	} else {
		host := s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i:]
		}
		if !isHostName(host) {
			return false
		}
	}
	if port == "" {
		return true
	}
	return port[0] == ':' && len(port) > 1 && strings.Trim(port[1:], "0123456789") == ""
}

func isHostName(s string) bool {
	for _, c := range strings.Split(s, ".") {
		if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
			return false
		}
		for i := 0; i < len(c); i++ {
			if !isAlnum(c[i]) && c[i] != '-' {
				return false
			}
		}
	}
	return true
}

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

// isTag: [\w][\w.-]{0,127}.
func isTag(s string) bool {
	if s == "" || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigest: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}.
func isDigest(s string) bool {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || len(enc) < 32 {
		return false
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	start := true // at the start of a component: a letter must follow
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start = false
		case c >= '0' && c <= '9':
			if start {
				return false
			}
		case strings.IndexByte("-_+.", c) >= 0:
			if start {
				return false
			}
			start = true
		default:
			return false
		}
	}
	return !start
}

// ParseNormalizedNamed parses s as Docker does a user's reference: a name
// without a domain is on docker.io, and an official image's path gains
// "library/".
func ParseNormalizedNamed(s string) (Named, error) {
	if len(s) == 64 && IsHex(s) {
		return nil, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, rest := splitDockerDomain(s)
	remote := rest
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		remote = rest[:i]
	}
	if strings.ToLower(remote) != remote {
		return nil, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return Parse(domain + "/" + rest)
}

// IsHex reports whether s is only lowercase hexadecimal digits, as IDs and
// digests are written. (A regexp with a counted repetition would be
// compiled at every start of the binary.)
func IsHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// splitDockerDomain: the first component is a domain if it has a "." or
// ":", is "localhost", or has capitals; docker.io is the default.
func splitDockerDomain(s string) (domain, rest string) {
	i := strings.IndexByte(s, '/')
	if i < 0 || !strings.ContainsAny(s[:i], ".:") && s[:i] != "localhost" && strings.ToLower(s[:i]) == s[:i] {
		domain, rest = defaultDomain, s
	} else {
		domain, rest = s[:i], s[i+1:]
	}
	if domain == legacyDefaultDomain {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.ContainsRune(rest, '/') {
		rest = officialRepoPrefix + rest
	}
	return domain, rest
}

// Domain is the domain of a name ("" when it has none).
func Domain(n Named) string { return repoOf(n).domain }

// Path is the path of a name, without its domain.
func Path(n Named) string { return repoOf(n).path }

// IsNameOnly reports whether n has neither tag nor digest.
func IsNameOnly(n Named) bool {
	if _, ok := n.(Tagged); ok {
		return false
	}
	_, ok := n.(Digested)
	return !ok
}

// TagNameOnly adds the tag "latest" to a bare name.
func TagNameOnly(n Named) Named {
	if IsNameOnly(n) {
		return tagged{repoOf(n), "latest"}
	}
	return n
}

// TrimNamed drops tag and digest.
func TrimNamed(n Named) Named { return repoOf(n) }

// WithTag returns n with tag (and n's digest, if it has one).
func WithTag(n Named, tag string) (NamedTagged, error) {
	if !isTag(tag) {
		return nil, ErrTagInvalidFormat
	}
	var d digest.Digest
	if c, ok := n.(Digested); ok {
		d = c.Digest()
	}
	return shape(repoOf(n), tag, d).(NamedTagged), nil
}

// FamiliarName is n's name as Docker shows it: no docker.io, no library/.
func FamiliarName(n Named) string {
	r := repoOf(n)
	if r.domain != defaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.path, officialRepoPrefix); ok && !strings.ContainsRune(rest, '/') {
		return rest
	}
	return r.path
}

// FamiliarString is n as Docker shows it: "busybox:latest", "ghcr.io/x/y:1".
func FamiliarString(n Named) string {
	s := FamiliarName(n)
	if t, ok := n.(Tagged); ok {
		s += ":" + t.Tag()
	}
	if d, ok := n.(Digested); ok {
		s += "@" + d.Digest().String()
	}
	return s
}
