package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/berth/berth/internal/metadata"
)

// bucketCache holds the layer cache: cache key → image ID.
const bucketCache = "build-cache"

type cacheRecord struct {
	Image string `json:"image"`
}

// cacheKey is the step's identity: the parent image, the instruction as
// written, the resulting config (which covers expansion by ENV), the build
// args in scope, and the content hash of the files it copies.
func (s *buildState) cacheKey(n *parser.Node, cfg dockerspec.DockerOCIImageConfig, contentHash string) string {
	keys := append([]string(nil), s.argKeys...)
	sort.Strings(keys)
	args := make([]string, 0, len(keys))
	for _, k := range keys {
		args = append(args, k+"="+s.args[k])
	}
	data, _ := json.Marshal(struct {
		Parent  string
		Line    string
		Config  dockerspec.DockerOCIImageConfig
		Args    []string
		Content string
	}{s.imageID, n.Original, cfg, args, contentHash})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (b *Builder) cacheGet(ctx context.Context, key string) (string, bool) {
	rec, err := metadata.Get[cacheRecord](b.db, bucketCache, key)
	if err != nil {
		return "", false
	}
	if _, _, err := b.images.Resolve(ctx, rec.Image); err != nil {
		_ = metadata.Delete(b.db, bucketCache, key)
		return "", false
	}
	return rec.Image, true
}

func (b *Builder) cachePut(key, id string) {
	_ = metadata.Put(b.db, bucketCache, key, &cacheRecord{Image: id})
}
