package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
)

// extractContext unpacks the build context tarball, streamed, into dir
// with layer.Apply's root-confined extraction.
func extractContext(ctx context.Context, r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, _, err := layer.Apply(ctx, dir, r, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts}); err != nil {
		return errdefs.Invalidf("build context: %v", err)
	}
	return nil
}

// readDockerignore returns the patterns of the context's .dockerignore
// (or <Dockerfile>.dockerignore), none if there is none.
func readDockerignore(ctxDir, dockerfile string) ([]string, error) {
	for _, name := range []string{dockerfile + ".dockerignore", ".dockerignore"} {
		p, err := resolveIn(ctxDir, name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, errdefs.Invalidf("%s: %v", name, err)
		}
		return pats, nil
	}
	return nil, nil
}

// applyDockerignore deletes what .dockerignore excludes from the context,
// as the client would have: the Dockerfile and .dockerignore stay.
func applyDockerignore(ctxDir, dockerfile string) error {
	pats, err := readDockerignore(ctxDir, dockerfile)
	if err != nil || len(pats) == 0 {
		return err
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return errdefs.Invalidf(".dockerignore: %v", err)
	}
	keep := map[string]bool{path.Clean(filepath.ToSlash(dockerfile)): true, ".dockerignore": true}
	var remove []string
	err = filepath.WalkDir(ctxDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ctxDir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		ignored, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if ignored && !keep[rel] {
			if d.IsDir() && !pm.Exclusions() {
				remove = append(remove, p)
				return filepath.SkipDir
			}
			if !d.IsDir() {
				remove = append(remove, p)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	for i := len(remove) - 1; i >= 0; i-- {
		if err := os.RemoveAll(remove[i]); err != nil {
			return err
		}
	}
	return nil
}

// resolveIn resolves unsafe inside root the way a chroot would: ".." stops
// at root and symlinks, absolute or relative, are followed inside root.
// Components that don't exist are joined as they are.
func resolveIn(root, unsafe string) (string, error) {
	cur := "/"
	rest := strings.Split(filepath.ToSlash(unsafe), "/")
	links := 0
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, fs.ErrNotExist) {
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > 255 {
			return "", errdefs.Invalidf("%s: too many levels of symbolic links", unsafe)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(root, cur), nil
}
