package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cluster comes up with 3 primaries of one replica each, a key's slot
// can be moved to another primary with its key, and a replica takes over
// its primary's slots with CLUSTER FAILOVER.
func TestStartCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t)
	t.Logf("6-node cluster up in %v", time.Since(start).Round(time.Millisecond))

	primaries := map[*Server]bool{}
	for slot := 0; slot < redisSlots; slot += 1000 {
		p := c.Primary(slot)
		require.NotNil(t, p, "slot %d", slot)
		primaries[p] = true
	}
	assert.Len(t, primaries, 3)
	for p := range primaries {
		assert.NotSame(t, p, c.ReplicaOf(p))
	}

	key := "some-key"
	owner := c.Owner(key)
	_, err := owner.Do("SET", key, "v")
	require.NoError(t, err)
	var to *Server
	for p := range primaries {
		if p != owner {
			to = p
		}
	}
	assert.Equal(t, 1, c.MigrateSlot(c.Slot(key), to, 0))
	assert.Same(t, to, c.Owner(key))
	v, err := redis.String(to.Do("GET", key))
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	_, err = owner.Do("GET", key)
	assert.True(t, err != nil && strings.HasPrefix(err.Error(), "MOVED"), "the old owner redirects: %v", err)

	replica := c.ReplicaOf(to)
	took := c.Failover(replica)
	t.Logf("graceful failover took %v", took.Round(time.Millisecond))
	assert.Same(t, replica, c.Owner(key))
	v, err = redis.String(replica.Do("GET", key))
	require.NoError(t, err)
	assert.Equal(t, "v", v, "the replica had the key")
}
