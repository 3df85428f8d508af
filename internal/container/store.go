package container

import (
	"context"

	"github.com/berth/berth/internal/metadata"
)

const bucket = "containers"

// MetadataStore keeps container records in the daemon's metadata store.
type MetadataStore struct{ DB *metadata.DB }

// Put stores c.
func (s MetadataStore) Put(_ context.Context, c *Container) error {
	return metadata.Put(s.DB, bucket, c.ID, c)
}

// Delete removes the record of container id.
func (s MetadataStore) Delete(_ context.Context, id string) error {
	return metadata.Delete(s.DB, bucket, id)
}

// All loads every container record.
func (s MetadataStore) All(context.Context) ([]*Container, error) {
	return metadata.All[Container](s.DB, bucket)
}
