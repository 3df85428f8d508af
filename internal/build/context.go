package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
)

// fileSums are the sha256 sums of the context's regular files, by
// slash-separated path relative to the context, computed while the
// context streams in so cache keys need not read the files again.
type fileSums map[string][sha256.Size]byte

// extractContext unpacks the build context tarball (plain or compressed),
// streamed, into dir. Every path is opened through an os.Root on dir, so
// no entry — "..", absolute names, symlinks placed by earlier entries —
// can write outside it. Owners are not kept (COPY makes context files
// 0:0); modes and mtimes are. Devices, FIFOs and sockets are skipped.
func extractContext(ctx context.Context, r io.Reader, dir string) (_ fileSums, err error) {
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			err = errdefs.Invalidf("build context: %v", err)
		}
	}()
	tree, err := openContextTree(dir)
	if err != nil {
		return nil, err
	}
	defer tree.close()
	root := tree.root
	dr, _, err := layer.Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	sums := fileSums{}
	h := sha256.New()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return nil, err
			}
		}
		fi := hdr.FileInfo()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg, tar.TypeGNUSparse:
			if err := removeEntry(root, name); err != nil {
				return nil, err
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, err
			}
			h.Reset()
			err = copyHash(f, h, tr, hdr.Size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			var sum [sha256.Size]byte
			copy(sum[:], h.Sum(nil))
			sums[name] = sum
		case tar.TypeSymlink:
			if err := removeEntry(root, name); err != nil {
				return nil, err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return nil, err
			}
			continue
		case tar.TypeLink:
			target := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			if err := removeEntry(root, name); err != nil {
				return nil, err
			}
			if err := root.Link(target, name); err != nil {
				return nil, err
			}
			if sum, ok := sums[target]; ok {
				sums[name] = sum
			}
			continue
		default:
			continue
		}
		if err := tree.setMeta(name, fi.Mode(), hdr.ModTime); err != nil {
			return nil, err
		}
	}
	tree.setDirTimes()
	return sums, nil
}

// contextTree is the directory a build context is unpacked or copied
// into, written through an os.Root on it.
type contextTree struct {
	root *os.Root
	dirs []dirTime // set last: entries written into a directory change its mtime
}

type dirTime struct {
	name  string
	mtime time.Time
}

func openContextTree(dir string) (*contextTree, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &contextTree{root: root}, nil
}

// setMeta gives the entry name its mode and mtime; a directory's mtime
// waits for setDirTimes. Owners are not kept.
func (t *contextTree) setMeta(name string, mode fs.FileMode, mtime time.Time) error {
	if err := t.root.Chmod(name, toChmod(mode)); err != nil {
		return err
	}
	if mode.IsDir() {
		t.dirs = append(t.dirs, dirTime{name, mtime})
		return nil
	}
	return t.root.Chtimes(name, mtime, mtime)
}

// setDirTimes sets the directories' mtimes, deepest first, once every
// entry is written.
func (t *contextTree) setDirTimes() {
	for i := len(t.dirs) - 1; i >= 0; i-- {
		_ = t.root.Chtimes(t.dirs[i].name, t.dirs[i].mtime, t.dirs[i].mtime)
	}
}

func (t *contextTree) close() { t.root.Close() }

// copyHash copies r to f and into h. Large files are hashed on another
// core while the next chunk is written (two buffers, alternating), which
// keeps a big context's extraction close to the cost of writing it.
func copyHash(f io.Writer, h hash.Hash, r io.Reader, size int64) error {
	const chunk = 1 << 20
	if size < 2*chunk {
		_, err := io.Copy(io.MultiWriter(f, h), r)
		return err
	}
	bufs := [2][]byte{make([]byte, chunk), make([]byte, chunk)}
	idle := make(chan struct{}, 1)
	idle <- struct{}{}
	defer func() { <-idle }() // the hasher is done with the buffers
	for i := 0; ; i ^= 1 {
		n, err := io.ReadFull(r, bufs[i])
		if n > 0 {
			<-idle // the other buffer is hashed
			data := bufs[i][:n]
			go func() {
				h.Write(data)
				idle <- struct{}{}
			}()
			if _, werr := f.Write(data); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// removeEntry removes what is at name unless it is a directory.
func removeEntry(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: a directory is in the way", name)
	}
	return root.Remove(name)
}

// readDockerignoreFS returns the patterns of the context's
// <Dockerfile>.dockerignore or .dockerignore, none if there is none. fsys
// is the context through its os.Root: symlinks resolve inside it.
func readDockerignoreFS(fsys fs.FS, dockerfile string) ([]string, error) {
	for _, name := range []string{path.Clean(filepath.ToSlash(dockerfile)) + ".dockerignore", ".dockerignore"} {
		f, err := fsys.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
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

// applyDockerignore deletes what .dockerignore excludes from an unpacked
// context, as the client would have left it out.
func applyDockerignore(ctxDir, dockerfile string) error {
	root, err := os.OpenRoot(ctxDir)
	if err != nil {
		return err
	}
	defer root.Close()
	ign, err := newIgnorer(root.FS(), dockerfile)
	if err != nil || ign.pm == nil {
		return err
	}
	var remove []string
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || rel == "." {
			return err
		}
		skip, skipDir, err := ign.skip(rel, d.IsDir())
		if err != nil {
			return err
		}
		if skipDir {
			remove = append(remove, rel)
			return fs.SkipDir
		}
		if skip && !d.IsDir() {
			remove = append(remove, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	for i := len(remove) - 1; i >= 0; i-- {
		if err := root.RemoveAll(remove[i]); err != nil {
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
