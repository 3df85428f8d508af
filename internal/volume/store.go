package volume

import (
	"context"

	"github.com/berth/berth/internal/metadata"
)

const bucket = "volumes"

// MetadataStore keeps volume records in the daemon's metadata store.
type MetadataStore struct{ DB *metadata.DB }

// Put stores v.
func (s MetadataStore) Put(_ context.Context, v *Volume) error {
	return metadata.Put(s.DB, bucket, v.Name, v)
}

// Delete removes the record of volume name.
func (s MetadataStore) Delete(_ context.Context, name string) error {
	return metadata.Delete(s.DB, bucket, name)
}

// All loads every volume record.
func (s MetadataStore) All(context.Context) ([]*Volume, error) {
	return metadata.All[Volume](s.DB, bucket)
}
