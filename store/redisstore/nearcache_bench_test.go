package redisstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// TestNearCacheStaleness measures, across two instances (stores on their
// own pools and links) with the default Fence and no strict wait, how
// long after A's End returned B still served the session it had cached:
// healthy, and with B's link stalled just before the sign-out. Then the
// in-process cost of a Lookup: cached, one GET, and the memory store's.
// It runs only under make bench (SESSIONGATE_BENCH=1): it measures, it
// asserts only that B stopped serving the session in the end.
func TestNearCacheStaleness(t *testing.T) {
	if os.Getenv("SESSIONGATE_BENCH") == "" {
		t.Skip("make bench runs this")
	}
	srv := storetest.Start(t)
	cfg := NearCache{}
	a := nearStoreOn(t, srv, Options{}, cfg)
	b := nearStoreOn(t, srv, Options{}, cfg)
	ctx := context.Background()

	// stale signs out a session B has cached and returns how long after
	// A's End returned B started its last Lookup that still served the
	// session live (0: none did); freeze, when set, runs just before the
	// End.
	stale := func(i int, freeze func()) time.Duration {
		key := nearMint(t, a, fmt.Sprintf("stale-%d", i), "p:hal")
		cached(t, b, key)
		if freeze != nil {
			freeze()
		}
		nearEnd(t, a, key, "p:hal")
		end := time.Now()
		var last time.Duration
		for {
			start := time.Now()
			s, err := b.Lookup(ctx, key)
			require.NoError(t, err)
			if s.Ended {
				return last
			}
			last = start.Sub(end)
		}
	}
	var healthy []time.Duration
	for i := range 500 {
		healthy = append(healthy, stale(i, nil))
	}
	slices.Sort(healthy)

	p := linkThrough(t, b, srv, cfg)
	var stalled []time.Duration
	for i := range 20 {
		serving(t, b.near)
		stalled = append(stalled, stale(1000+i, p.freeze))
		p.thaw()
	}
	slices.Sort(stalled)
	fmt.Printf("\nNear cache, revocation staleness across two instances (Fence %v, not strict): how long after A's End returned B's last Lookup to serve the session live began\n", b.near.cfg.Fence)
	late := []time.Duration{0}
	for _, d := range healthy {
		if d > 0 {
			late = append(late, d)
		}
	}
	fmt.Printf("  healthy link, %d sign-outs: p50 %v, p99 %v, max %v; served live after End returned in %d of them (their p50 %v)\n",
		len(healthy), healthy[len(healthy)/2], healthy[len(healthy)*99/100].Round(time.Microsecond),
		healthy[len(healthy)-1].Round(time.Microsecond), len(late)-1, late[len(late)/2].Round(time.Microsecond))
	fmt.Printf("  B's link stalled just before the sign-out, %d sign-outs: p50 %v, max %v (the fence: at most Fence after the last answered PING)\n",
		len(stalled), stalled[len(stalled)/2].Round(time.Millisecond), stalled[len(stalled)-1].Round(time.Millisecond))

	key := nearMint(t, a, "cost", "p:hal")
	cached(t, b, key)
	plain := New(b.pool, Options{})
	mem := store.NewMemory()
	require.NoError(t, mem.Mint(ctx, backend.NewSession{Token: backendtest.Token("cost", "validator"), Record: backendtest.Record,
		Data: []byte("data"), Expires: time.Now().Add(time.Hour), User: "p:hal"}))
	cost := func(st interface {
		Lookup(context.Context, string) (format.Stored, error)
	}) testing.BenchmarkResult {
		return testing.Benchmark(func(bb *testing.B) {
			bb.ReportAllocs()
			for bb.Loop() {
				if s, _ := st.Lookup(ctx, key); !s.Live() {
					bb.Fatal("not live")
				}
			}
		})
	}
	near, get, memory := cost(b), cost(plain), cost(mem)
	fmt.Printf("\nLookup in process: near cache hit %v (%d allocs), one GET %v (%d allocs), memory store %v (%d allocs)\n",
		time.Duration(near.NsPerOp()), near.AllocsPerOp(), time.Duration(get.NsPerOp()), get.AllocsPerOp(),
		time.Duration(memory.NsPerOp()), memory.AllocsPerOp())
}

// BenchmarkNearCacheLookup is a Lookup of a cached session, in process,
// against the same Lookup as one GET.
func BenchmarkNearCacheLookup(b *testing.B) {
	srv := storetest.Start(b)
	near := nearStoreOn(b, srv, Options{}, NearCache{Fence: time.Minute})
	key := nearMint(b, near, "bench", "p:ida")
	cached(b, near, key)
	ctx := context.Background()
	for name, st := range map[string]store.Store{"cached": near, "GET": New(near.pool, Options{})} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s, _ := st.Lookup(ctx, key); !s.Live() {
					b.Fatal("not live")
				}
			}
		})
	}
}
