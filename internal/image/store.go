package image

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/content"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/reference"
	"github.com/berth/berth/internal/snapshot"
)

// staleIngestAge is how long GC leaves an interrupted blob write for a
// retry to resume.
const staleIngestAge = 24 * time.Hour

// Buckets in the daemon's metadata store.
const (
	bucketImages = "images"      // image ID → imageRecord
	bucketNames  = "image-names" // normalised name → nameRecord
)

// imageRecord is one local image. Its ID is its config's digest, as Docker's.
type imageRecord struct {
	ID       digest.Digest
	Target   ocispec.Descriptor  // the platform's image manifest
	Index    *ocispec.Descriptor `json:",omitempty"` // the index it was selected from, if any
	Layers   []digest.Digest     // layer blob digests, in order
	ChainIDs []digest.Digest     // snapshot names, in order
	Size     int64               // uncompressed size of all layers
	Created  time.Time           // when it was stored here
	// RepoDigests are "name@digest" references it was pulled by.
	RepoDigests []string `json:",omitempty"`
}

type nameRecord struct {
	Name string
	ID   digest.Digest
}

// Config is what a Store is made from.
type Config struct {
	DB          *metadata.DB // the daemon's metadata store (buckets "images", "image-names")
	Content     *content.Store
	Snapshotter snapshot.Snapshotter
	// TempDir holds archive files being loaded (same file system as the
	// data root, not /tmp).
	TempDir string
	// Platform images are selected for; zero means DefaultPlatform().
	Platform ocispec.Platform
}

// Store keeps local images. All methods are safe for concurrent use.
type Store struct {
	cfg Config

	// gcMu is held shared by anything that adds blobs or snapshots before
	// recording the image they belong to (load, create, pull through Hold),
	// and exclusively by deletion and garbage collection, which must not
	// take those for unreferenced.
	gcMu sync.RWMutex
}

// NewStore returns an image store over cfg.
func NewStore(cfg Config) (*Store, error) {
	if cfg.DB == nil || cfg.Content == nil || cfg.Snapshotter == nil {
		return nil, errors.New("image store: DB, Content and Snapshotter are required")
	}
	if cfg.Platform.OS == "" {
		cfg.Platform = DefaultPlatform()
	}
	return &Store{cfg: cfg}, nil
}

// Content returns the blob store.
func (s *Store) Content() *content.Store { return s.cfg.Content }

// Snapshotter returns the snapshotter layers are unpacked into.
func (s *Store) Snapshotter() snapshot.Snapshotter { return s.cfg.Snapshotter }

// Hold keeps garbage collection and image deletion from running until the
// returned func is called: a puller holds it while it writes blobs that no
// image references yet.
func (s *Store) Hold() (release func()) {
	s.gcMu.RLock()
	return s.gcMu.RUnlock
}

// Image is a local image as callers see it.
type Image struct {
	ID          digest.Digest
	Names       []string // normalised names, sorted ("docker.io/library/busybox:latest")
	RepoDigests []string
	Target      ocispec.Descriptor
	Config      *dockerspec.DockerOCIImage
	ChainIDs    []digest.Digest
	Size        int64
	Created     time.Time // the config's creation time, or when it was stored
}

// RepoTags returns the image's names as Docker shows them.
func (img *Image) RepoTags() []string {
	out := make([]string, 0, len(img.Names))
	for _, n := range img.Names {
		out = append(out, FamiliarName(n))
	}
	return out
}

// ShortID is the 12-hex-digit ID docker shows.
func (img *Image) ShortID() string { return ShortID(img.ID) }

// ShortID returns the first 12 hex digits of id.
func ShortID(id digest.Digest) string {
	h := id.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// TopChainID returns the snapshot a container's rootfs is prepared on ("" for
// an image without layers).
func (img *Image) TopChainID() string {
	if len(img.ChainIDs) == 0 {
		return ""
	}
	return img.ChainIDs[len(img.ChainIDs)-1].String()
}

// ContainerConfig returns the image's run configuration in the Engine API's
// shape.
func (img *Image) ContainerConfig() *container.Config {
	c := img.Config.Config
	out := &container.Config{
		User:        c.User,
		Env:         c.Env,
		Cmd:         c.Cmd,
		Entrypoint:  c.Entrypoint,
		WorkingDir:  c.WorkingDir,
		Labels:      c.Labels,
		StopSignal:  c.StopSignal,
		Healthcheck: c.Healthcheck,
		OnBuild:     c.OnBuild,
		Shell:       c.Shell,
	}
	//lint:ignore SA1019 Docker carries it through for Windows images
	out.ArgsEscaped = c.ArgsEscaped
	if len(c.Volumes) > 0 {
		out.Volumes = map[string]struct{}{}
		for v := range c.Volumes {
			out.Volumes[v] = struct{}{}
		}
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = network.PortSet{}
		for p := range c.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				out.ExposedPorts[port] = struct{}{}
			}
		}
	}
	return out
}

func (s *Store) image(ctx context.Context, rec *imageRecord, names []string) (*Image, error) {
	cfg, err := readConfig(ctx, s.cfg.Content, ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: rec.ID, Size: -1})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ShortID(rec.ID), err)
	}
	sort.Strings(names)
	img := &Image{
		ID: rec.ID, Names: names, RepoDigests: rec.RepoDigests, Target: rec.Target,
		Config: cfg, ChainIDs: rec.ChainIDs, Size: rec.Size, Created: rec.Created,
	}
	if cfg.Created != nil && !cfg.Created.IsZero() {
		img.Created = *cfg.Created
	}
	return img, nil
}

// namesOf returns the names pointing at each image ID.
func namesOf(tx *metadata.Tx) (map[digest.Digest][]string, error) {
	names, err := metadata.AllTx[nameRecord](tx, bucketNames)
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest][]string{}
	for _, n := range names {
		out[n.ID] = append(out[n.ID], n.Name)
	}
	return out, nil
}

// lookup finds the image ref names: by full ID, by name, or by unique ID
// prefix. byName tells whether ref was a name (rmi of a name untags it).
func lookup(tx *metadata.Tx, ref string) (rec *imageRecord, name string, err error) {
	if ref == "" {
		return nil, "", errdefs.Invalidf("invalid reference format: empty reference")
	}
	if isFullID(ref) {
		id := digest.Digest(ref)
		if !strings.HasPrefix(ref, "sha256:") {
			id = digest.Digest("sha256:" + ref)
		}
		rec, err := metadata.GetTx[imageRecord](tx, bucketImages, id.String())
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, "", errdefs.NotFoundf("No such image: %s", ref)
		}
		return rec, "", err
	}
	named, perr := ParseReference(ref)
	if perr == nil {
		if n, err := metadata.GetTx[nameRecord](tx, bucketNames, named.String()); err == nil {
			rec, err := metadata.GetTx[imageRecord](tx, bucketImages, n.ID.String())
			if err != nil {
				return nil, "", fmt.Errorf("image %s of %s: %w", n.ID, n.Name, err)
			}
			return rec, n.Name, nil
		}
		if canon, ok := named.(reference.Canonical); ok {
			if rec, err := byRepoDigest(tx, canon); rec != nil || err != nil {
				return rec, "", err
			}
		}
	}
	if isIDPrefix(ref) {
		prefix := "sha256:" + strings.TrimPrefix(ref, "sha256:")
		var found *imageRecord
		var n int
		err := tx.ForEach(bucketImages, func(k string, _ []byte) error {
			if strings.HasPrefix(k, prefix) {
				n++
				if n == 1 {
					r, err := metadata.GetTx[imageRecord](tx, bucketImages, k)
					if err != nil {
						return err
					}
					found = r
				}
			}
			return nil
		})
		if err != nil {
			return nil, "", err
		}
		if n > 1 {
			return nil, "", errdefs.Invalidf("image ID prefix %s is ambiguous: %d images match", ref, n)
		}
		if found != nil {
			return found, "", nil
		}
	}
	if perr != nil && !isIDPrefix(ref) {
		return nil, "", perr
	}
	return nil, "", errdefs.NotFoundf("No such image: %s", ref)
}

func byRepoDigest(tx *metadata.Tx, canon reference.Canonical) (*imageRecord, error) {
	recs, err := metadata.AllTx[imageRecord](tx, bucketImages)
	if err != nil {
		return nil, err
	}
	want := canon.String()
	for _, r := range recs {
		for _, rd := range r.RepoDigests {
			if rd == want {
				return r, nil
			}
		}
		if canon.Digest() == r.Target.Digest || (r.Index != nil && canon.Digest() == r.Index.Digest) {
			return r, nil
		}
	}
	return nil, nil
}

// Resolve finds a local image by name ("busybox", "busybox:1.36",
// "busybox@sha256:..."), full ID, or unique ID prefix. It returns the
// normalised name ref matched ("" when matched by ID). Unknown: errdefs
// NotFound "No such image: ref"; an ambiguous prefix: errdefs Invalid.
func (s *Store) Resolve(ctx context.Context, ref string) (*Image, string, error) {
	var rec *imageRecord
	var name string
	var names map[digest.Digest][]string
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		var err error
		if rec, name, err = lookup(tx, ref); err != nil {
			return err
		}
		names, err = namesOf(tx)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	img, err := s.image(ctx, rec, names[rec.ID])
	return img, name, err
}

// List returns all local images, newest first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var recs []*imageRecord
	var names map[digest.Digest][]string
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		var err error
		if recs, err = metadata.AllTx[imageRecord](tx, bucketImages); err != nil {
			return err
		}
		names, err = namesOf(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(recs))
	for _, r := range recs {
		img, err := s.image(ctx, r, names[r.ID])
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Count returns how many images there are.
func (s *Store) Count(ctx context.Context) (int, error) {
	keys, err := metadata.Keys(s.cfg.DB, bucketImages)
	return len(keys), err
}

// Tag gives the image source the name target ("busybox:mine"); a name that
// pointed at another image moves (that image keeps its other names, or
// becomes dangling).
func (s *Store) Tag(ctx context.Context, source, target string) error {
	named, err := ParseReference(target)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return errdefs.Invalidf("refusing to create a tag with a digest reference: %s", target)
	}
	return s.cfg.DB.Update(func(tx *metadata.Tx) error {
		rec, _, err := lookup(tx, source)
		if err != nil {
			return err
		}
		return metadata.PutTx(tx, bucketNames, named.String(), &nameRecord{Name: named.String(), ID: rec.ID})
	})
}

// Untag removes the name ref; the image stays (dangling if it was its last
// name). An unknown name is errdefs NotFound.
func (s *Store) Untag(ctx context.Context, ref string) error {
	named, err := ParseReference(ref)
	if err != nil {
		return err
	}
	return s.cfg.DB.Update(func(tx *metadata.Tx) error {
		if tx.GetRaw(bucketNames, named.String()) == nil {
			return errdefs.NotFoundf("No such image: %s", ref)
		}
		return metadata.DeleteTx(tx, bucketNames, named.String())
	})
}

// DeleteItem is one line of `docker rmi` output.
type DeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// InUseFunc tells whether containers use image id, naming one if so.
type InUseFunc func(id string) (containerID string, used bool)

// Delete is `docker rmi ref`. A name of an image that has other names is
// only untagged. Otherwise all names go and the image with them, along with
// the blobs and snapshots no other image needs — unless a container uses
// it (errdefs Conflict; with force, its names go and the image stays), or
// ref is an ID of an image with several names (Conflict without force).
func (s *Store) Delete(ctx context.Context, ref string, force bool, inUse InUseFunc) ([]DeleteItem, error) {
	items, _, err := s.delete(ctx, ref, force, inUse)
	return items, err
}

// errRaced means ref moved to another image between the in-use check and
// the deletion: delete checks again.
var errRaced = errors.New("image reference changed during delete")

func (s *Store) delete(ctx context.Context, ref string, force bool, inUse InUseFunc) ([]DeleteItem, int64, error) {
	for {
		items, freed, err := s.deleteOnce(ctx, ref, force, inUse)
		if !errors.Is(err, errRaced) {
			return items, freed, err
		}
	}
}

func (s *Store) deleteOnce(ctx context.Context, ref string, force bool, inUse InUseFunc) ([]DeleteItem, int64, error) {
	// Ask about containers before taking any lock of ours: the container
	// service may hold its own locks while it calls into this store.
	var id digest.Digest
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		rec, _, err := lookup(tx, ref)
		if err == nil {
			id = rec.ID
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	var user string
	used := false
	if inUse != nil {
		user, used = inUse(id.String())
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var items []DeleteItem
	var gone *imageRecord
	err = s.cfg.DB.Update(func(tx *metadata.Tx) error {
		items, gone = nil, nil
		rec, name, err := lookup(tx, ref)
		if err != nil {
			return err
		}
		if rec.ID != id {
			return errRaced
		}
		all, err := namesOf(tx)
		if err != nil {
			return err
		}
		names := all[rec.ID]
		if name != "" && len(names) > 1 {
			items = append(items, DeleteItem{Untagged: FamiliarName(name)})
			return metadata.DeleteTx(tx, bucketNames, name)
		}
		if name == "" && len(names) > 1 && !force {
			return errdefs.Conflictf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", ShortID(rec.ID))
		}
		if used && !force {
			if name != "" {
				return errdefs.Conflictf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, shortStr(user), ShortID(rec.ID))
			}
			return errdefs.Conflictf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", ShortID(rec.ID), shortStr(user))
		}
		sort.Strings(names)
		for _, n := range names {
			items = append(items, DeleteItem{Untagged: FamiliarName(n)})
			if err := metadata.DeleteTx(tx, bucketNames, n); err != nil {
				return err
			}
		}
		if used {
			return nil // forced: names gone, the image stays for its containers
		}
		gone = rec
		items = append(items, DeleteItem{Deleted: rec.ID.String()})
		return metadata.DeleteTx(tx, bucketImages, rec.ID.String())
	})
	if err != nil {
		return nil, 0, err
	}
	var freed int64
	if gone != nil {
		if freed, err = s.collect(ctx, gone); err != nil {
			return items, freed, fmt.Errorf("image %s deleted, but not all of its data: %w", ShortID(gone.ID), err)
		}
	}
	return items, freed, nil
}

func shortStr(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// references returns the blobs and snapshots the recorded images need.
func (s *Store) references() (map[digest.Digest]bool, map[string]bool, error) {
	recs, err := metadata.All[imageRecord](s.cfg.DB, bucketImages)
	if err != nil {
		return nil, nil, err
	}
	blobs, snaps := map[digest.Digest]bool{}, map[string]bool{}
	for _, r := range recs {
		blobs[r.ID] = true
		blobs[r.Target.Digest] = true
		if r.Index != nil {
			blobs[r.Index.Digest] = true
		}
		for _, l := range r.Layers {
			blobs[l] = true
		}
		for _, c := range r.ChainIDs {
			snaps[c.String()] = true
		}
	}
	return blobs, snaps, nil
}

// collect removes the blobs and snapshots of a deleted image that no other
// image needs (gcMu held). It returns the bytes freed.
func (s *Store) collect(ctx context.Context, gone *imageRecord) (int64, error) {
	blobs, snaps, err := s.references()
	if err != nil {
		return 0, err
	}
	var freed int64
	var errs []error
	for i := len(gone.ChainIDs) - 1; i >= 0; i-- {
		c := gone.ChainIDs[i].String()
		if snaps[c] {
			break // it and its parents are needed
		}
		if u, err := s.cfg.Snapshotter.Usage(ctx, c); err == nil {
			freed += u
		}
		if err := s.cfg.Snapshotter.Remove(ctx, c); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			if errors.Is(err, errdefs.ErrConflict) {
				break // a container's snapshot (or another chain) sits on it
			}
			errs = append(errs, err)
			break
		}
	}
	cand := append([]digest.Digest{gone.ID, gone.Target.Digest}, gone.Layers...)
	if gone.Index != nil {
		cand = append(cand, gone.Index.Digest)
	}
	for _, d := range cand {
		if blobs[d] {
			continue
		}
		if info, err := s.cfg.Content.Info(ctx, d); err == nil {
			freed += info.Size
		}
		if err := s.cfg.Content.Delete(ctx, d); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return freed, errors.Join(errs...)
}

// GC removes committed snapshots and blobs no image references, and what an
// interrupted unpack or commit left (extraction snapshots, commit views).
// Snapshots containers stand on are kept (the snapshotter refuses to remove
// a parent). Call it at daemon start to clean up after a crash. It returns
// the bytes freed.
func (s *Store) GC(ctx context.Context) (int64, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	blobs, snaps, err := s.references()
	if err != nil {
		return 0, err
	}
	var freed int64
	// No unpack or commit runs while gcMu is held exclusively: their
	// scratch snapshots are leftovers.
	var scratch []string
	err = s.cfg.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind != snapshot.KindCommitted && (strings.HasPrefix(i.Name, "extract-") || strings.HasPrefix(i.Name, "commit-view-")) {
			scratch = append(scratch, i.Name)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range scratch {
		u, _ := s.cfg.Snapshotter.Usage(ctx, k)
		if err := s.cfg.Snapshotter.Remove(ctx, k); err == nil {
			freed += u
		}
	}
	for {
		var victims []string
		err := s.cfg.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
			if i.Kind == snapshot.KindCommitted && !snaps[i.Name] {
				victims = append(victims, i.Name)
			}
			return nil
		})
		if err != nil {
			return freed, err
		}
		removed := 0
		for _, v := range victims {
			u, _ := s.cfg.Snapshotter.Usage(ctx, v)
			if err := s.cfg.Snapshotter.Remove(ctx, v); err == nil {
				freed += u
				removed++
			}
		}
		if removed == 0 {
			break
		}
	}
	// Ingests nobody resumed for a day (an interrupted load or pull that
	// was not retried) are abandoned.
	if err := s.cfg.Content.CleanIngests(ctx, staleIngestAge); err != nil {
		return freed, err
	}
	var dead []content.Info
	err = s.cfg.Content.Walk(ctx, func(i content.Info) error {
		if !blobs[i.Digest] {
			dead = append(dead, i)
		}
		return nil
	})
	if err != nil {
		return freed, err
	}
	for _, i := range dead {
		if err := s.cfg.Content.Delete(ctx, i.Digest); err == nil {
			freed += i.Size
		}
	}
	return freed, nil
}

// Prune deletes dangling images (no names), or with all every image no
// container uses, then collects garbage. It returns what it deleted and the
// bytes freed.
func (s *Store) Prune(ctx context.Context, all bool, inUse InUseFunc) ([]DeleteItem, int64, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	var items []DeleteItem
	var freed int64
	for _, img := range imgs {
		if len(img.Names) > 0 && !all {
			continue
		}
		if inUse != nil {
			if _, used := inUse(img.ID.String()); used {
				continue
			}
		}
		del, n, err := s.delete(ctx, img.ID.String(), true, inUse)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			return items, freed, err
		}
		items = append(items, del...)
		freed += n
	}
	n, err := s.GC(ctx)
	return items, freed + n, err
}
