package storetest

import (
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartSentinel: the set comes up with one primary, two replicas in
// sync and three sentinels that agree on the primary; a killed primary is
// replaced.
func TestStartSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	set := StartSentinel(t, SentinelConfig{MinReplicasToWrite: 1})
	t.Logf("Sentinel set up in %v", time.Since(start).Round(time.Millisecond))
	assert.Contains(t, set.URL(), "master_name="+set.Master)
	require.Equal(t, set.Nodes[0].Addr, set.Primary())
	_, err := set.Nodes[0].Do("SET", "k", "v")
	require.NoError(t, err)
	_, err = set.Nodes[1].Do("SET", "k", "v")
	assert.ErrorContains(t, err, "READONLY", "the others are replicas")

	killed := time.Now()
	old := set.KillPrimary()
	next := set.WaitForNewPrimary(old)
	t.Logf("new primary named %v after the kill", time.Since(killed).Round(time.Millisecond))
	assert.NotEqual(t, old, next)
	v, err := redis.String(set.Node(next).Do("GET", "k"))
	require.NoError(t, err)
	assert.Equal(t, "v", v, "the promoted replica has the data")
}
