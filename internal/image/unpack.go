package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
	"github.com/berth/berth/internal/log"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/snapshot"
)

// CreateOptions tunes Create.
type CreateOptions struct {
	// Index is the index or manifest list target was selected from, if any.
	Index *ocispec.Descriptor
	// RepoDigests to record ("docker.io/library/busybox@sha256:...").
	RepoDigests []string
	// Platform to select from an index; nil means the store's.
	Platform *ocispec.Platform
}

// Create records the image whose manifest (or index, resolved for the
// store's platform) is target, once its blobs are all in the content store:
// it unpacks the layers (each shared layer once, verified against the
// config's diff IDs), then records the image and gives it names, in one
// transaction. Nothing is named unless everything worked.
func (s *Store) Create(ctx context.Context, target ocispec.Descriptor, names []string, opts CreateOptions) (*Image, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.create(ctx, target, names, opts)
}

func (s *Store) create(ctx context.Context, target ocispec.Descriptor, names []string, opts CreateOptions) (*Image, error) {
	var normalised []string
	for _, n := range names {
		ref, err := ParseReference(n)
		if err != nil {
			return nil, err
		}
		normalised = append(normalised, ref.String())
	}
	if IsIndex(target.MediaType) && opts.Index == nil {
		idx := target
		opts.Index = &idx
	}
	platform := s.cfg.Platform
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	mdesc, m, err := manifestFor(ctx, s.cfg.Content, target, platform)
	if err != nil {
		return nil, err
	}
	cfg, err := readConfig(ctx, s.cfg.Content, m.Config)
	if err != nil {
		return nil, err
	}
	if err := checkLayers(m, cfg); err != nil {
		return nil, err
	}
	chains, size, err := s.unpack(ctx, m, cfg.RootFS.DiffIDs)
	if err != nil {
		return nil, err
	}
	rec := &imageRecord{
		ID: m.Config.Digest, Target: mdesc, Index: opts.Index, ChainIDs: chains,
		Size: size, Created: time.Now().UTC(), RepoDigests: opts.RepoDigests,
	}
	for _, l := range m.Layers {
		rec.Layers = append(rec.Layers, l.Digest)
	}
	err = s.cfg.DB.Update(func(tx *metadata.Tx) error {
		if old, err := metadata.GetTx[imageRecord](tx, bucketImages, rec.ID.String()); err == nil {
			rec.Created = old.Created
			rec.RepoDigests = mergeStrings(old.RepoDigests, rec.RepoDigests)
		}
		if err := metadata.PutTx(tx, bucketImages, rec.ID.String(), rec); err != nil {
			return err
		}
		for _, n := range normalised {
			if err := metadata.PutTx(tx, bucketNames, n, &nameRecord{Name: n, ID: rec.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	img, _, err := s.Resolve(ctx, rec.ID.String())
	return img, err
}

func mergeStrings(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range append(append([]string(nil), a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// unpack makes sure a committed snapshot exists for every layer prefix and
// returns their chain IDs and the total uncompressed size.
func (s *Store) unpack(ctx context.Context, m *ocispec.Manifest, diffIDs []digest.Digest) (_ []digest.Digest, _ int64, err error) {
	chains := ChainIDs(diffIDs)
	var total int64
	parent := ""
	var made []string // committed here: removed again if a later layer fails
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = s.cfg.Snapshotter.Remove(context.WithoutCancel(ctx), made[i])
			}
		}
	}()
	for i, l := range m.Layers {
		chain := chains[i].String()
		if _, err := s.cfg.Snapshotter.Stat(ctx, chain); err == nil {
			if info, err := s.cfg.Content.Info(ctx, l.Digest); err == nil {
				total += info.Size
			}
			parent = chain
			continue
		}
		size, err := s.unpackLayer(ctx, l, diffIDs[i], chain, parent)
		if err != nil {
			return nil, 0, fmt.Errorf("layer %d (%s): %w", i, ShortID(l.Digest), err)
		}
		total += size
		made = append(made, chain)
		parent = chain
	}
	return chains, total, nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Store) unpackLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, chain, parent string) (size int64, err error) {
	if _, err := layer.CompressionOf(desc.MediaType); err != nil {
		return 0, err
	}
	sn := s.cfg.Snapshotter
	key := "extract-" + randomSuffix() + "-" + chain
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			if rerr := sn.Remove(context.WithoutCancel(ctx), key); rerr != nil {
				log.From(ctx).Warn("remove failed extraction snapshot", "key", key, "err", rerr)
			}
		}
	}()
	blob, err := s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return 0, err
	}
	defer blob.Close()
	verified := &verifyReader{r: blob, want: desc.Digest, size: desc.Size, digester: digest.Canonical.Digester()}
	var got digest.Digest
	if dir, overlayWh, ok := sn.ApplyDir(key); ok {
		mode := layer.ApplyWhiteouts
		if overlayWh {
			mode = layer.OverlayWhiteouts
		}
		got, size, err = layer.Apply(ctx, dir, verified, layer.ApplyOptions{Whiteouts: mode})
	} else {
		got, size, err = s.applyMounted(ctx, mounts, verified)
	}
	if err != nil {
		return 0, err
	}
	if err := verified.check(); err != nil {
		return 0, err
	}
	if got != diffID {
		return 0, errdefs.Invalidf("layer content does not match the image config: diff ID %s, config says %s", got, diffID)
	}
	if err := sn.Commit(ctx, chain, key); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			// Unpacked concurrently by someone else: theirs stands.
			_ = sn.Remove(context.WithoutCancel(ctx), key)
			return size, nil
		}
		return 0, err
	}
	return size, nil
}

func (s *Store) applyMounted(ctx context.Context, mounts []snapshot.Mount, r *verifyReader) (digest.Digest, int64, error) {
	base := s.cfg.TempDir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", 0, err
	}
	target, err := os.MkdirTemp(base, "unpack-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(target)
	if err := snapshot.MountAll(mounts, target); err != nil {
		return "", 0, err
	}
	defer snapshot.Unmount(target)
	return layer.Apply(ctx, target, r, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts})
}

// verifyReader checks a blob against its descriptor as it is read, so a
// layer blob changed on disk is caught in the same pass that unpacks it.
type verifyReader struct {
	r        interface{ Read([]byte) (int, error) }
	want     digest.Digest
	size     int64
	n        int64
	digester digest.Digester
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.digester.Hash().Write(p[:n])
	return n, err
}

func (v *verifyReader) check() error {
	// Read what Apply left (tar padding, trailing compressed bytes).
	buf := make([]byte, 32<<10)
	for {
		_, err := v.Read(buf)
		if err != nil {
			break
		}
	}
	if v.size >= 0 && v.n != v.size {
		return errdefs.Invalidf("layer blob %s is %d bytes, manifest says %d", v.want, v.n, v.size)
	}
	if got := v.digester.Digest(); got != v.want {
		return errdefs.Invalidf("layer blob %s has digest %s", v.want, got)
	}
	return nil
}

// RootfsOptions tune how PrepareRootfs mounts a container's root
// filesystem.
type RootfsOptions struct {
	// Volatile mounts an overlay rootfs with overlay's "volatile" option:
	// nothing in the writable layer is synced, neither at the container's
	// fsyncs nor at unmount, which otherwise syncs the whole filesystem
	// under the data root (about 2 ms at every container exit here). Only
	// for a layer thrown away when the container ends (--rm): after a host
	// crash such a container is removed, its layer never mounted again.
	Volatile bool
}

// PrepareRootfs makes the writable root filesystem of container id on top of
// image imageID (snapshot "container-<id>") and mounts it at target. If the
// container's snapshot exists (a restart), it is reused.
func (s *Store) PrepareRootfs(ctx context.Context, id, imageID, target string, o RootfsOptions) error {
	key := rootfsKey(id)
	sn := s.cfg.Snapshotter
	mounts, err := sn.Mounts(ctx, key)
	if errors.Is(err, errdefs.ErrNotFound) {
		img, _, rerr := s.Resolve(ctx, imageID)
		if rerr != nil {
			return rerr
		}
		mounts, err = sn.Prepare(ctx, key, img.TopChainID())
	}
	if err != nil {
		return fmt.Errorf("container %s rootfs: %w", shortStr(id), err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	mount := snapshot.MountAll
	if o.Volatile {
		mount = snapshot.MountVolatile
	}
	if err := mount(mounts, target); err != nil {
		return fmt.Errorf("container %s rootfs: %w", shortStr(id), err)
	}
	return nil
}

// UnmountRootfs unmounts container id's root filesystem from target; its
// content stays. Not mounted is not an error.
func (s *Store) UnmountRootfs(ctx context.Context, id, target string) error {
	return snapshot.Unmount(target)
}

// RemoveRootfs deletes container id's root filesystem snapshot; absent is not
// an error.
func (s *Store) RemoveRootfs(ctx context.Context, id string) error {
	err := s.cfg.Snapshotter.Remove(ctx, rootfsKey(id))
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// RootfsIDs lists the IDs that have a root filesystem snapshot
// (PrepareRootfs), containers' and builds' alike.
func (s *Store) RootfsIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.cfg.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
		if id, ok := strings.CutPrefix(i.Name, rootfsKey("")); ok {
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

// RootfsUsage is the disk space of container id's own changes (`ps -s`).
func (s *Store) RootfsUsage(ctx context.Context, id string) (int64, error) {
	return s.cfg.Snapshotter.Usage(ctx, rootfsKey(id))
}

func rootfsKey(id string) string { return "container-" + id }
