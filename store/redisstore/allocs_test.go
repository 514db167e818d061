package redisstore

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

// A steady read (Lookup of a key that exists) allocates no more than it
// did when this test was written: on a single server 5 (the operation's
// context, the key with its prefix, redigo's argument and reply, the
// pool's connection wrapper), on a Cluster node one more (the node's
// key). Review T's error conversion once cost every Cluster read one
// allocation more, on success too.
func TestSteadyLookupAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("-race allocates on its own: allocation counts are asserted without it")
	}
	ctx := context.Background()
	srv := storetest.Start(t)
	single, err := Open(srv.URL, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { single.(io.Closer).Close() })
	c := storetest.StartCluster(t)
	cluster := newClusterTestStore(t, c, Options{})
	counts := map[string]float64{}
	for name, lookup := range map[string]func(){
		"single":  func() { _, err := single.Lookup(ctx, "allocs"); assert.NoError(t, err) },
		"cluster": func() { _, err := cluster.Lookup(ctx, "allocs"); assert.NoError(t, err) },
	} {
		lookup()
		counts[name] = testing.AllocsPerRun(200, lookup)
	}
	t.Logf("allocations per steady Lookup: %v", counts)
	assert.LessOrEqual(t, counts["single"], float64(5))
	assert.LessOrEqual(t, counts["cluster"], float64(6))
}
