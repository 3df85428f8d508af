// Package image keeps local images: names and IDs over manifests, configs and
// layer blobs in the content store, layers unpacked into snapshots by chain
// ID, docker/OCI archive load, and the root filesystems containers run on.
package image

import (
	"errors"
	"strings"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/reference"
)

// ParseReference normalises a user's image reference the way Docker does:
// "busybox" → "docker.io/library/busybox:latest", a missing tag becomes
// "latest" unless a digest is given. Bad references are errdefs Invalid
// "invalid reference format: ...".
func ParseReference(s string) (reference.Named, error) {
	if s == "" {
		return nil, errdefs.Invalidf("invalid reference format: empty reference")
	}
	if isFullID(s) {
		return nil, errdefs.Invalidf("invalid reference format: %s is an image ID, not a name", s)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, referenceError(s, err)
	}
	return reference.TagNameOnly(named), nil
}

func referenceError(s string, err error) error {
	if errors.Is(err, reference.ErrNameNotCanonical) || isFullID(s) {
		return errdefs.Invalidf("invalid reference format: %s is a 64-hex-digit ID, not a repository name", s)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "invalid reference format: ")
	msg = strings.TrimPrefix(msg, "invalid reference format")
	if msg == "" {
		return errdefs.Invalidf("invalid reference format: %q", s)
	}
	return errdefs.Invalidf("invalid reference format: %s (%q)", msg, s)
}

// FamiliarString is how Docker shows a normalised name: "busybox:latest",
// "ghcr.io/x/y:1".
func FamiliarString(ref reference.Named) string {
	return reference.FamiliarString(ref)
}

// FamiliarName shows a normalised name string, or returns it unchanged when
// it does not parse.
func FamiliarName(name string) string {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(ref)
}

// isFullID reports whether s is a whole image ID, with or without "sha256:".
func isFullID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	return len(s) == 64 && reference.IsHex(s)
}

// isIDPrefix reports whether s may be (a prefix of) an image ID.
func isIDPrefix(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	return len(s) >= 1 && len(s) <= 64 && reference.IsHex(s)
}
