package container

import (
	"sort"
	"strings"
	"sync"

	"github.com/berth/berth/internal/errdefs"
)

// index finds containers by full ID, name or unique ID prefix, as every
// Docker verb that takes a container does.
type index struct {
	mu     sync.RWMutex // guards byID and byName
	byID   map[string]*Container
	byName map[string]string // name → ID
}

func newIndex() *index {
	return &index{byID: map[string]*Container{}, byName: map[string]string{}}
}

// reserve claims name for id, failing if another container has it.
func (x *index) reserve(name, id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if other, ok := x.byName[name]; ok && other != id {
		return errdefs.Conflictf(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, other)
	}
	x.byName[name] = id
	return nil
}

func (x *index) release(name, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byName[name] == id {
		delete(x.byName, name)
	}
}

func (x *index) taken(name string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.byName[name]
	return ok
}

func (x *index) add(c *Container) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byID[c.ID] = c
	x.byName[c.Name] = c.ID
}

func (x *index) remove(c *Container) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.byID, c.ID)
	if x.byName[c.Name] == c.ID {
		delete(x.byName, c.Name)
	}
}

// get resolves ref the way Docker does: a full ID, then an exact name,
// then a unique ID prefix.
func (x *index) get(ref string) (*Container, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if ref == "" {
		return nil, errdefs.Invalidf("no container name or ID given")
	}
	if c, ok := x.byID[ref]; ok {
		return c, nil
	}
	if id, ok := x.byName[strings.TrimPrefix(ref, "/")]; ok {
		if c, ok := x.byID[id]; ok {
			return c, nil
		}
	}
	var found *Container
	for id, c := range x.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Invalidf("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// all returns every container, newest first (as `docker ps`).
func (x *index) all() []*Container {
	x.mu.RLock()
	out := make([]*Container, 0, len(x.byID))
	for _, c := range x.byID {
		out = append(out, c)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
