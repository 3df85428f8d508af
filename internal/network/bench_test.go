package network

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/berth/berth/internal/metadata"
	"github.com/berth/berth/internal/testutil"
)

func benchServiceTB(b testing.TB, pool int) *Service {
	testutil.RequireRoot(b)
	dir := b.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := New(context.Background(), Config{DB: db, State: stateStore(b, filepath.Join(dir, "exec")), ExecRoot: filepath.Join(dir, "exec"), HostNetNS: testutil.TestNetNS(b), PoolSize: pool})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// BenchmarkAttachDetach is the cost networking adds to a container's
// start and removal on the default bridge: namespace, veth, address,
// rules, and back. Between containers (outside the timer) the pool refills
// and deferred veth deletions finish, as they do while a container runs.
func BenchmarkAttachDetach(b *testing.B) {
	for _, pool := range []int{0, 2} {
		b.Run(fmt.Sprintf("pool=%d", pool), func(b *testing.B) {
			s := benchServiceTB(b, pool)
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				s.cleanup.Wait()
				for s.pool != nil && len(s.pool) < cap(s.pool) {
					runtime.Gosched()
				}
				b.StartTimer()
				id := fmt.Sprintf("%064x", i)
				if _, err := s.Attach(ctx, AttachRequest{ContainerID: id, Name: "c"}); err != nil {
					b.Fatal(err)
				}
				if err := s.Detach(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
