package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/moby/patternmatcher"

	"github.com/berth/berth/internal/errdefs"
)

// copyContext copies the client's context directory src into dir, as
// extractContext unpacks a tarball: the same tree, modes and mtimes, no
// owners, no devices, FIFOs or sockets, and nothing .dockerignore excludes
// (dockerfile names the Dockerfile, which stays). It reads src through its
// os.Root, so no symlink in it leads out; symlinks are copied as links.
//
// A file's sum comes from known when its stat (device, inode, size, mtime,
// ctime) is the one known was told for it, and is computed from the copy
// otherwise: a cached rebuild reads no file twice. A file that changes
// while it is copied is an error, not a copy of half of each version.
func copyContext(ctx context.Context, src *os.Root, dir, dockerfile string, known *statSums) (_ fileSums, err error) {
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			err = errdefs.Invalidf("build context: %v", err)
		}
	}()
	ign, err := newIgnorer(src.FS(), dockerfile)
	if err != nil {
		return nil, err
	}
	tree, err := openContextTree(dir)
	if err != nil {
		return nil, err
	}
	defer tree.close()
	dst := tree.root
	sums := fileSums{}
	err = fs.WalkDir(src.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		// An excluded directory that exclusions ("!") may reach into is
		// kept, as applyDockerignore keeps it.
		skip, skipDir, err := ign.skip(name, d.IsDir())
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if skipDir {
			return fs.SkipDir
		}
		if skip && !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := dst.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := src.Readlink(name)
			if err != nil {
				return err
			}
			return dst.Symlink(target, name)
		case fi.Mode().IsRegular():
			sum, err := copyContextFile(src, dst, name, known)
			if err != nil {
				return err
			}
			sums[name] = sum
		default:
			return nil
		}
		return tree.setMeta(name, fi.Mode(), fi.ModTime())
	})
	if err != nil {
		return nil, err
	}
	tree.setDirTimes()
	return sums, nil
}

// copyContextFile copies the regular file name from src to dst (in the
// kernel where it can) and returns its sha256.
func copyContextFile(src, dst *os.Root, name string, known *statSums) (sum [sha256.Size]byte, err error) {
	in, err := src.OpenFile(name, os.O_RDONLY|syscallNoFollow, 0)
	if err != nil {
		return sum, err
	}
	defer in.Close()
	before, err := statKeyOf(in)
	if err != nil {
		return sum, err
	}
	out, err := dst.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sum, err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return sum, err
	}
	after, err := statKeyOf(in)
	if err != nil {
		return sum, err
	}
	if after != before {
		return sum, fmt.Errorf("%s changed while it was read", name)
	}
	if s, ok := known.get(before); ok {
		return s, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(out, 0, before.size)); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	known.put(before, sum)
	return sum, nil
}

// statKey is what tells one version of a file from another without
// reading it, as git's index and BuildKit's content cache do: its ctime
// moves with every write, and no one but the kernel sets it.
type statKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func statKeyOf(f *os.File) (statKey, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return statKey{}, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return statKey{}, fmt.Errorf("%s: not a regular file", f.Name())
	}
	return statKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

// statSums remembers the sums of the context files builds copied, by stat.
// It lives in memory: a restarted daemon reads each file once more.
type statSums struct {
	mu sync.Mutex
	m  map[statKey][sha256.Size]byte
}

// maxStatSums bounds statSums (about 100 bytes an entry); past it, it
// starts over.
const maxStatSums = 1 << 16

func (s *statSums) get(k statKey) ([sha256.Size]byte, bool) {
	if s == nil {
		return [sha256.Size]byte{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

func (s *statSums) put(k statKey, v [sha256.Size]byte) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxStatSums {
		s.m = map[statKey][sha256.Size]byte{}
	}
	s.m[k] = v
}

// ignorer is a context's .dockerignore, as the client applies it: what it
// excludes is left out, except the Dockerfile and .dockerignore.
type ignorer struct {
	pm   *patternmatcher.PatternMatcher
	keep map[string]bool
}

func newIgnorer(fsys fs.FS, dockerfile string) (*ignorer, error) {
	pats, err := readDockerignoreFS(fsys, dockerfile)
	if err != nil || len(pats) == 0 {
		return &ignorer{}, err
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, errdefs.Invalidf(".dockerignore: %v", err)
	}
	return &ignorer{pm: pm, keep: map[string]bool{path.Clean(filepath.ToSlash(dockerfile)): true, ".dockerignore": true}}, nil
}

// skip tells whether rel (slash-separated, relative to the context) is
// left out, and for a directory whether nothing under it can come back.
func (i *ignorer) skip(rel string, isDir bool) (skip, skipDir bool, err error) {
	if i.pm == nil || i.keep[rel] {
		return false, false, nil
	}
	ignored, err := i.pm.MatchesOrParentMatches(rel)
	if err != nil || !ignored {
		return false, false, err
	}
	return true, isDir && !i.pm.Exclusions(), nil
}
