package network

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkAttachDetach is the cost networking adds to a container's
// start and removal on the default bridge: namespace, veth, address,
// rules, and back. Between containers (outside the timer) the pool refills
// and deferred veth deletions finish, as they do while a container runs.
func BenchmarkAttachDetach(b *testing.B) {
	for _, pool := range []int{0, 2} {
		b.Run(fmt.Sprintf("pool=%d", pool), func(b *testing.B) {
			s := newServiceEnv(b).open(b, pool)
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
