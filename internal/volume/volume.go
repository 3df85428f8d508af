// Package volume owns named and anonymous volumes: Docker's local driver
// (a directory under the data root, or a filesystem mounted there from
// type/device/o options), which containers use them, and their removal
// and pruning.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	apivolume "github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/errdefs"
	eventbus "github.com/berth/berth/internal/events"
)

// Volume is a volume's record.
type Volume struct {
	Name      string
	Driver    string
	CreatedAt time.Time
	Labels    map[string]string
	Options   map[string]string // local driver: type, device, o
	Anonymous bool              // made for a container, not by name
}

// Store persists volume records.
type Store interface {
	Put(ctx context.Context, v *Volume) error
	Delete(ctx context.Context, name string) error
	All(ctx context.Context) ([]*Volume, error)
}

// Service owns the volumes. Safe for concurrent use.
type Service struct {
	root   string // <data-root>/volumes
	store  Store
	events *eventbus.Bus
	users  func(name string) []string // containers that refer to a volume (SetUsers)

	mu   sync.Mutex         // guards vols and refs
	vols map[string]*Volume // by name
	// refs are the containers using each volume; a volume with options is
	// mounted while it has any.
	refs map[string]map[string]bool
}

// New loads the volumes the store has.
func New(ctx context.Context, root string, store Store, bus *eventbus.Bus) (*Service, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, err
	}
	all, err := store.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load volumes: %w", err)
	}
	s := &Service{root: root, store: store, events: bus, vols: map[string]*Volume{}, refs: map[string]map[string]bool{}}
	for _, v := range all {
		s.vols[v.Name] = v
	}
	return s, nil
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// localOptions are the options Docker's local driver takes.
var localOptions = map[string]bool{"type": true, "device": true, "o": true, "size": false}

// Create makes a volume; with an empty name, an anonymous one. Creating a
// name that exists returns the existing volume, as Docker does, unless the
// driver or options differ.
func (s *Service) Create(ctx context.Context, name, driver string, opts, labels map[string]string) (*Volume, error) {
	anonymous := name == ""
	if anonymous {
		b := make([]byte, 32)
		rand.Read(b)
		name = hex.EncodeToString(b)
	}
	if !validName.MatchString(name) {
		return nil, errdefs.Invalidf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	if driver == "" {
		driver = "local"
	}
	if driver != "local" {
		return nil, errdefs.NotFoundf("create %s: error looking up volume plugin %s: plugin %q not found", name, driver, driver)
	}
	for k := range opts {
		if !localOptions[k] {
			return nil, errdefs.Invalidf("create %s: invalid option key: %q", name, k)
		}
	}
	if opts["device"] != "" && opts["type"] == "" {
		return nil, errdefs.Invalidf("create %s: missing \"type\" option: a device needs a filesystem type", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		if v.Driver != driver || !sameMap(v.Options, opts) {
			return nil, errdefs.Conflictf("create %s: volume already exists with different options", name)
		}
		return v, nil
	}
	v := &Volume{Name: name, Driver: driver, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Options: opts, Anonymous: anonymous}
	if err := os.MkdirAll(s.dataDir(name), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	os.Chmod(filepath.Join(s.root, name), 0o701)
	if err := s.store.Put(ctx, v); err != nil {
		os.RemoveAll(filepath.Join(s.root, name))
		return nil, err
	}
	s.vols[name] = v
	s.publish(v, events.ActionCreate)
	return v, nil
}

func (s *Service) dataDir(name string) string { return filepath.Join(s.root, name, "_data") }

// Ensure returns the volume called name and its data directory, creating
// it (local driver, no options) when missing; with no name it creates an
// anonymous volume. It is what `-v name:/dst` does at container create.
func (s *Service) Ensure(ctx context.Context, name string, labels map[string]string) (string, string, error) {
	if name != "" {
		if v, err := s.Get(name); err == nil {
			return v.Name, s.dataDir(v.Name), nil
		}
	}
	v, err := s.Create(ctx, name, "", nil, labels)
	if err != nil {
		return "", "", err
	}
	return v.Name, s.dataDir(v.Name), nil
}

// Adopt records that container uses the volume without mounting it: the
// daemon restarted while the container ran, and the volume's filesystem
// stayed mounted for it.
func (s *Service) Adopt(name, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		return
	}
	if s.refs[name] == nil {
		s.refs[name] = map[string]bool{}
	}
	s.refs[name][container] = true
}

// Get returns a volume by name.
func (s *Service) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.NotFoundf("get %s: no such volume", name)
	}
	return v, nil
}

// API is the volume as the Engine API shows it.
func (s *Service) API(v *Volume) apivolume.Volume {
	labels, opts := v.Labels, v.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return apivolume.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: s.dataDir(v.Name), CreatedAt: v.CreatedAt.Format(time.RFC3339),
		Labels: labels, Options: opts, Scope: "local",
	}
}

// Filters names the filters List and Prune accept.
var (
	ListFilters  = []string{"dangling", "driver", "label", "name"}
	PruneFilters = []string{"label", "label!", "all"}
)

// List returns the volumes that match filters (Docker's volume ls keys),
// sorted by name.
func (s *Service) List(ctx context.Context, filters map[string][]string) ([]*Volume, error) {
	for _, d := range filters["dangling"] {
		if d != "true" && d != "false" && d != "1" && d != "0" {
			return nil, errdefs.Invalidf("invalid filter 'dangling=%s'", d)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Volume
	for _, v := range s.vols {
		if !anyMatch(filters["name"], func(f string) bool { return strings.Contains(v.Name, f) }) ||
			!anyMatch(filters["driver"], func(f string) bool { return f == v.Driver }) ||
			!anyMatch(filters["label"], func(f string) bool { return hasLabel(v.Labels, f) }) ||
			!anyMatch(filters["dangling"], func(f string) bool { return (f == "true" || f == "1") == (len(s.refs[v.Name]) == 0) }) {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes a volume that no container uses. force also ignores a
// volume that does not exist.
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(ctx, name, force)
}

// Preconditions: s.mu held.
func (s *Service) removeLocked(ctx context.Context, name string, force bool) error {
	v, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errdefs.NotFoundf("get %s: no such volume", name)
	}
	if ids := s.usersLocked(name); len(ids) > 0 {
		return errdefs.Conflictf("remove %s: volume is in use - [%s]", name, strings.Join(ids, ", "))
	}
	if err := os.RemoveAll(filepath.Join(s.root, name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := s.store.Delete(ctx, name); err != nil {
		return err
	}
	delete(s.vols, name)
	s.publish(v, events.ActionDestroy)
	return nil
}

// Prune removes unused volumes: anonymous ones, or all with all=true, as
// Docker since API 1.42; label and label! filter them.
func (s *Service) Prune(ctx context.Context, filters map[string][]string) (apivolume.PruneReport, error) {
	all := false
	for _, v := range filters["all"] {
		all = all || v == "true" || v == "1"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	report := apivolume.PruneReport{VolumesDeleted: []string{}}
	names := make([]string, 0, len(s.vols))
	for n := range s.vols {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := s.vols[n]
		if len(s.usersLocked(n)) > 0 || (!all && !v.Anonymous) {
			continue
		}
		if !anyMatch(filters["label"], func(f string) bool { return hasLabel(v.Labels, f) }) {
			continue
		}
		if len(filters["label!"]) > 0 && anyMatch(filters["label!"], func(f string) bool { return hasLabel(v.Labels, f) }) {
			continue
		}
		size := dirSize(s.dataDir(n))
		if err := s.removeLocked(ctx, n, false); err != nil {
			return report, err
		}
		report.VolumesDeleted = append(report.VolumesDeleted, n)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}

// Mount records that container uses the volume and returns the host path
// to bind into it. A volume with a device is mounted at its first user.
func (s *Service) Mount(ctx context.Context, name, container string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", errdefs.NotFoundf("get %s: no such volume", name)
	}
	if len(s.refs[name]) == 0 && v.Options["type"] != "" {
		if err := mountLocal(s.dataDir(name), v.Options); err != nil {
			return "", fmt.Errorf("mount volume %s: %w", name, err)
		}
	}
	if s.refs[name] == nil {
		s.refs[name] = map[string]bool{}
	}
	s.refs[name][container] = true
	s.publish(v, events.ActionMount)
	return s.dataDir(name), nil
}

// Unmount records that container no longer uses the volume, unmounting a
// device volume after its last user.
func (s *Service) Unmount(ctx context.Context, name, container string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok || !s.refs[name][container] {
		return nil
	}
	delete(s.refs[name], container)
	if len(s.refs[name]) == 0 {
		delete(s.refs, name)
		if v.Options["type"] != "" {
			if err := unix.Unmount(s.dataDir(name), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount volume %s: %w", name, err)
			}
		}
	}
	s.publish(v, events.ActionUnmount)
	return nil
}

// mountLocal mounts a local-driver volume's filesystem: mount -t type
// -o o device dir. Bind mounts ("o" containing bind) are allowed only from
// absolute device paths.
func mountLocal(dir string, opts map[string]string) error {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts["o"], ",") {
		switch o {
		case "":
		case "ro":
			flags |= unix.MS_RDONLY
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		default:
			data = append(data, o)
		}
	}
	if flags&unix.MS_BIND != 0 && !filepath.IsAbs(opts["device"]) {
		return errdefs.Invalidf("a bind volume's device must be an absolute path, not %q", opts["device"])
	}
	return unix.Mount(opts["device"], dir, opts["type"], flags, strings.Join(data, ","))
}

func (s *Service) publish(v *Volume, action events.Action) {
	if s.events == nil {
		return
	}
	s.events.Publish(eventbus.Message{Type: events.VolumeEventType, Action: action,
		Actor: events.Actor{ID: v.Name, Attributes: map[string]string{"driver": v.Driver}}})
}

func anyMatch(values []string, ok func(string) bool) bool {
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

func hasLabel(labels map[string]string, filter string) bool {
	k, want, hasValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == want)
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// SetUsers tells the service which containers refer to a volume, running
// or not (Docker refuses to remove a volume any container refers to). Call
// it before the service is used.
func (s *Service) SetUsers(users func(name string) []string) { s.users = users }

// usersLocked lists the containers using or referring to volume name,
// sorted. Preconditions: s.mu is held.
func (s *Service) usersLocked(name string) []string {
	set := map[string]bool{}
	for id := range s.refs[name] {
		set[id] = true
	}
	if s.users != nil {
		for _, id := range s.users(name) {
			set[id] = true
		}
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
