package build

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/image"
	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/snapshot"
)

type copySpec struct {
	instructions.SourcesAndDest
	From, Chown, Chmod, Name string
	Add                      bool
}

// source is one file tree to copy: abs is its resolved path on the host.
type source struct {
	abs, name string
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withRootfs prepares a writable root filesystem on the current image,
// mounted, for fn; the snapshot's ID is passed on to commit. The mount and
// the snapshot are gone afterwards.
func (s *buildState) withRootfs(ctx context.Context, parent string, fn func(id, root string) error) (err error) {
	id := "build-" + randomID()
	mnt := filepath.Join(s.tmp, id)
	images := s.b.images
	if parent != "" {
		err = images.PrepareRootfs(ctx, id, parent, mnt, image.RootfsOptions{})
	} else {
		var mounts []snapshot.Mount
		if mounts, err = images.Snapshotter().Prepare(ctx, "container-"+id, ""); err == nil {
			if err = os.MkdirAll(mnt, 0o755); err == nil {
				err = snapshot.MountAll(mounts, mnt)
			}
		}
	}
	defer func() {
		rctx := context.WithoutCancel(ctx)
		_ = images.UnmountRootfs(rctx, id, mnt)
		_ = os.Remove(mnt)
		if rerr := images.RemoveRootfs(rctx, id); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}
	return fn(id, mnt)
}

// workdir is WORKDIR: it sets the working directory and creates it.
func (s *buildState) workdir(ctx context.Context, n *parser.Node, cfg dockerspec.DockerOCIImageConfig) error {
	return s.cached(ctx, n, cfg, "", func() (string, error) {
		var out string
		err := s.withRootfs(ctx, s.imageID, func(id, root string) error {
			p, err := resolveIn(root, cfg.WorkingDir)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("WORKDIR %s: %w", cfg.WorkingDir, err)
			}
			if err := s.b.images.UnmountRootfs(ctx, id, root); err != nil {
				return err
			}
			img, err := s.b.images.BuildStep(ctx, image.BuildStepOptions{
				Parent: s.imageID, Rootfs: id, Config: cfg, Adopt: true,
				History: ocispec.History{CreatedBy: "/bin/sh -c #(nop) WORKDIR " + cfg.WorkingDir},
			})
			if err != nil {
				return err
			}
			out = img.ID.String()
			return nil
		})
		return out, err
	})
}

// copyStep is COPY and ADD.
func (s *buildState) copyStep(ctx context.Context, n *parser.Node, c copySpec) (err error) {
	if len(c.SourceContents) > 0 {
		return errdefs.NotImplemented(fmt.Errorf("%s with a heredoc needs BuildKit", c.Name))
	}
	if len(c.SourcePaths) == 0 {
		return errdefs.Invalidf("%s requires at least two arguments", c.Name)
	}
	var mode *os.FileMode
	if c.Chmod != "" {
		m, err := strconv.ParseUint(c.Chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.Invalidf("%s --chmod=%s: invalid mode, use an octal number", c.Name, c.Chmod)
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	// The source root: the context, or a stage's or image's file system.
	srcRoot := s.ctxDir
	fromID := ""
	if c.From != "" {
		if id, ok := s.stages[strings.ToLower(c.From)]; ok {
			fromID = id
		} else {
			img, _, err := s.b.images.Resolve(ctx, c.From)
			if err != nil {
				return fmt.Errorf("%s --from=%s: not a stage and not a local image: %w", c.Name, c.From, err)
			}
			fromID = img.ID.String()
		}
		if fromID == "" {
			return errdefs.Invalidf("%s --from=%s: the stage is empty (FROM scratch)", c.Name, c.From)
		}
		id := "build-src-" + randomID()
		mnt := filepath.Join(s.tmp, id)
		if err := s.b.images.PrepareRootfs(ctx, id, fromID, mnt, image.RootfsOptions{}); err != nil {
			return err
		}
		defer func() {
			rctx := context.WithoutCancel(ctx)
			_ = s.b.images.UnmountRootfs(rctx, id, mnt)
			_ = os.Remove(mnt)
			_ = s.b.images.RemoveRootfs(rctx, id)
		}()
		srcRoot = mnt
	}
	var srcs []source
	for _, p := range c.SourcePaths {
		if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
			if !c.Add {
				return errdefs.Invalidf("COPY %s: source can't be a URL (use ADD)", p)
			}
			return errdefs.NotImplemented(fmt.Errorf("ADD %s: remote URLs are not fetched: berth builds have no network access", p))
		}
		if strings.HasPrefix(p, "git@") || strings.HasSuffix(p, ".git") && strings.Contains(p, "://") {
			return errdefs.NotImplemented(fmt.Errorf("ADD %s: git sources need BuildKit", p))
		}
		m, err := s.matchSources(srcRoot, p)
		if err != nil {
			return err
		}
		srcs = append(srcs, m...)
	}
	var sums fileSums
	if c.From == "" {
		sums = s.sums
	}
	content, err := contentHash(srcs, srcRoot, sums)
	if err != nil {
		return err
	}
	hash := fromID + ":" + content + ":" + c.Chown + ":" + c.Chmod
	dest := c.DestPath
	if !path.IsAbs(dest) {
		wd := s.config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest) + map[bool]string{true: "/"}[strings.HasSuffix(c.DestPath, "/")]
	}
	cfg := s.config
	return s.cached(ctx, n, cfg, hash, func() (string, error) {
		var out string
		err := s.withRootfs(ctx, s.imageID, func(id, root string) error {
			owner := &idPair{}
			if c.Chown != "" {
				o, err := lookupOwner(root, c.Chown)
				if err != nil {
					return fmt.Errorf("%s --chown=%s: %w", c.Name, c.Chown, err)
				}
				owner = o
			} else if c.From != "" {
				owner = nil // keep the source's owners
			}
			if err := copyInto(ctx, root, srcs, dest, owner, mode, c.Add && c.From == ""); err != nil {
				return err
			}
			if err := s.b.images.UnmountRootfs(ctx, id, root); err != nil {
				return err
			}
			img, err := s.b.images.BuildStep(ctx, image.BuildStepOptions{
				Parent: s.imageID, Rootfs: id, Config: cfg, Adopt: true,
				History: ocispec.History{CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) %s file:%s in %s ", c.Name, content, dest)},
			})
			if err != nil {
				return err
			}
			out = img.ID.String()
			return nil
		})
		return out, err
	})
}

// matchSources expands a source path (wildcards allowed) inside root.
func (s *buildState) matchSources(root, p string) ([]source, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	if !strings.ContainsAny(clean, "*?[") {
		abs, err := resolveIn(root, clean)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(abs); err != nil {
			return nil, errdefs.NotFoundf("COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", strings.TrimPrefix(clean, "/"))
		}
		return []source{{abs: abs, name: path.Base(clean)}}, nil
	}
	dir, pat := path.Split(clean)
	if strings.ContainsAny(dir, "*?[") {
		return nil, errdefs.NotImplemented(fmt.Errorf("COPY %s: wildcards are supported in the last path element only", p))
	}
	absDir, err := resolveIn(root, dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(absDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []source
	for _, e := range ents {
		ok, err := path.Match(pat, e.Name())
		if err != nil {
			return nil, errdefs.Invalidf("COPY %s: %v", p, err)
		}
		if ok {
			abs, err := resolveIn(root, path.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, source{abs: abs, name: e.Name()})
		}
	}
	if len(out) == 0 {
		return nil, errdefs.NotFoundf("COPY failed: no source files were specified matching %s", p)
	}
	return out, nil
}

// contentHash hashes what the sources hold: names, modes, owners, link
// targets and file contents.
func contentHash(srcs []source, root string, sums fileSums) (string, error) {
	h := sha256.New()
	for _, src := range srcs {
		err := filepath.WalkDir(src.abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src.abs, p)
			uid, gid := ownerOf(fi)
			fmt.Fprintf(h, "%s\x00%s\x00%o\x00%d:%d\x00", src.name, rel, fi.Mode(), uid, gid)
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "%s\x00", t)
			case fi.Mode().IsRegular():
				fmt.Fprintf(h, "%d\x00", fi.Size())
				if rel, err := filepath.Rel(root, p); err == nil && sums != nil {
					if sum, ok := sums[filepath.ToSlash(rel)]; ok {
						h.Write(sum[:])
						return nil
					}
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				fh := sha256.New()
				_, err = io.Copy(fh, f)
				h.Write(fh.Sum(nil))
				f.Close()
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type idPair struct{ uid, gid int }

// copyInto copies srcs to dest inside root with Docker's rules: several
// sources or a dest ending in "/" means dest is a directory; a directory
// source copies its contents. owner nil keeps the sources' owners. ADD
// extracts local tar archives.
func copyInto(ctx context.Context, root string, srcs []source, dest string, owner *idPair, mode *os.FileMode, extract bool) error {
	destIsDir := strings.HasSuffix(dest, "/") || len(srcs) > 1
	if len(srcs) > 1 && !strings.HasSuffix(dest, "/") {
		return errdefs.Invalidf("When using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	if !destIsDir {
		if p, err := resolveIn(root, dest); err == nil {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				destIsDir = true
			}
		}
	}
	for _, src := range srcs {
		fi, err := os.Lstat(src.abs)
		if err != nil {
			return err
		}
		if extract && fi.Mode().IsRegular() {
			ok, err := isArchive(src.abs)
			if err != nil {
				return err
			}
			if ok {
				if err := extractArchive(ctx, root, src.abs, dest); err != nil {
					return err
				}
				continue
			}
		}
		target := dest
		if fi.IsDir() {
			target = dest
		} else if destIsDir {
			target = path.Join(dest, src.name)
		}
		if err := copyTree(root, src.abs, target, owner, mode); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the tree at src to target (a path inside root), each
// destination resolved inside root.
func copyTree(root, src, target string, owner *idPair, mode *os.FileMode) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := path.Join(target, filepath.ToSlash(rel))
		parent, err := resolveIn(root, path.Dir(dst))
		if err != nil {
			return err
		}
		if err := mkdirAllOwned(root, path.Dir(dst), owner); err != nil {
			return err
		}
		out := filepath.Join(parent, path.Base(dst))
		if path.Clean(dst) == "/" {
			out = root
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		uid, gid := ownerOf(fi)
		if owner != nil {
			uid, gid = owner.uid, owner.gid
		}
		perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		if mode != nil {
			perm = *mode
		}
		switch {
		case fi.IsDir():
			if ofi, err := os.Lstat(out); err == nil && ofi.Mode()&fs.ModeSymlink != 0 {
				// an existing symlink to a directory: write through it, inside root
				if out, err = resolveIn(root, dst); err != nil {
					return err
				}
			}
			err := os.Mkdir(out, 0o755)
			if err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			if rel == "." && (err != nil || path.Clean(dst) == "/") {
				return nil // as Docker: an existing destination directory keeps its owner and mode
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_ = removeNonDir(out)
			if err := os.Symlink(t, out); err != nil {
				return err
			}
			return os.Lchown(out, uid, gid)
		case fi.Mode().IsRegular():
			if err := removeNonDir(out); err != nil {
				return err
			}
			if err := copyFile(p, out); err != nil {
				return err
			}
		default:
			return nil // devices, sockets and FIFOs are not copied
		}
		if err := os.Lchown(out, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(out, toChmod(perm)); err != nil {
			return err
		}
		return os.Chtimes(out, fi.ModTime(), fi.ModTime())
	})
}

func toChmod(m fs.FileMode) fs.FileMode {
	out := m.Perm()
	if m&fs.ModeSetuid != 0 {
		out |= os.ModeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		out |= os.ModeSetgid
	}
	if m&fs.ModeSticky != 0 {
		out |= os.ModeSticky
	}
	// --chmod given as octal bits 04000 etc.
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

func removeNonDir(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errdefs.Conflictf("cannot overwrite directory %s with a file", p)
	}
	return os.Remove(p)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_TRUNC|syscallNoFollow, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mkdirAllOwned creates the missing directories of dir (inside root) the
// way Docker does: owned by the copy's owner.
func mkdirAllOwned(root, dir string, owner *idPair) error {
	dir = path.Clean("/" + dir)
	if dir == "/" {
		return nil
	}
	if err := mkdirAllOwned(root, path.Dir(dir), owner); err != nil {
		return err
	}
	p, err := resolveIn(root, dir)
	if err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	if owner != nil {
		return os.Lchown(p, owner.uid, owner.gid)
	}
	return nil
}

// isArchive reports whether the file is a tar archive ADD extracts (plain,
// gzip, bzip2, xz or zstd).
func isArchive(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	peek, _ := br.Peek(512)
	if layer.DetectCompression(peek) != layer.Uncompressed {
		rc, _, err := layer.Decompress(br)
		if err != nil {
			return false, nil
		}
		defer rc.Close()
		buf := make([]byte, 512)
		n, _ := io.ReadFull(rc, buf)
		return isTarHeader(buf[:n]), nil
	}
	return isTarHeader(peek), nil
}

func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	return string(b[257:262]) == "ustar"
}

func extractArchive(ctx context.Context, root, src, dest string) error {
	if err := mkdirAllOwned(root, dest, &idPair{}); err != nil {
		return err
	}
	dir, err := resolveIn(root, dest)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, err := layer.Apply(ctx, dir, f, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts}); err != nil {
		return fmt.Errorf("ADD: extracting %s: %w", filepath.Base(src), err)
	}
	return nil
}

// lookupOwner resolves --chown's user[:group] in the image's /etc/passwd
// and /etc/group (names) or as numbers.
func lookupOwner(root, spec string) (*idPair, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(root, "/etc/passwd", user, 2)
	if err != nil {
		return nil, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(root, "/etc/group", group, 2); err != nil {
			return nil, err
		}
	} else if _, err := strconv.Atoi(user); err != nil {
		if gid, err = lookupID(root, "/etc/passwd", user, 3); err != nil {
			return nil, err
		}
	}
	return &idPair{uid: uid, gid: gid}, nil
}

func lookupID(root, file, name string, field int) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, errdefs.Invalidf("negative ID %d", n)
		}
		return n, nil
	}
	p, err := resolveIn(root, file)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, errdefs.Invalidf("unable to find %s in %s: %v", name, file, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > field && f[0] == name {
			n, err := strconv.Atoi(f[field])
			if err != nil {
				return 0, errdefs.Invalidf("%s: bad entry for %s", file, name)
			}
			return n, nil
		}
	}
	return 0, errdefs.Invalidf("unable to find %s in %s", name, file)
}
