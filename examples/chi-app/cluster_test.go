package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// TestProcessOnCluster: the app, with REDIS_URL naming a real 6-node
// Redis Cluster, runs the whole flow (wholeFlow) with its sessions on
// several slots of several nodes; then, with SESSION_MAX_PER_USER=2, a
// third sign-in ends the least recently used session.
func TestProcessOnCluster(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	url := fmt.Sprintf("redis://%s?cluster=true&addr=%s&addr=%s", c.Nodes[0].Addr, c.Nodes[1].Addr, c.Nodes[2].Addr)

	env, sessions := wholeFlow(t, url, 8)
	slots, nodes := map[int]bool{}, map[string]int{}
	for _, s := range sessions {
		key := "sg:s:" + format.KeyOf(s)
		owner := c.Owner(key)
		n, err := owner.Do("EXISTS", key)
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "the session's key (its mark now) is on the node that owns its slot")
		slots[c.Slot(key)] = true
		nodes[owner.Addr]++
	}
	t.Logf("%d sessions of the flow on %d slots and %d nodes (%v)", len(sessions), len(slots), len(nodes), nodes)
	assert.GreaterOrEqual(t, len(slots), 3)
	assert.GreaterOrEqual(t, len(nodes), 2)

	// The device limit: two sessions per user.
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	capped := pluralityEnv(fake)
	capped["SESSION_STORE"], capped["REDIS_URL"], capped["SESSION_SECRET"] = "redis", url, env["SESSION_SECRET"]
	capped["SESSION_MAX_PER_USER"] = "2"
	app := startApp(t, capped)
	var tokens, own [3]string
	for i := range tokens {
		if i > 0 {
			time.Sleep(5 * time.Millisecond) // distinct sign-in times: the limit ends the least recently used
		}
		tokens[i] = fake.Issue("cap", time.Hour)
		ex := app.do(call{method: "POST", path: "/auth/session", bearer: tokens[i]})
		require.Equal(t, http.StatusCreated, ex.status, ex.body)
		own[i] = ex.session
	}
	me := func(c call) int { c.path = "/api/me"; return app.do(c).status }
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: own[0]}), "the third sign-in ended the least recently used")
	assert.Equal(t, http.StatusOK, me(call{cookie: own[1]}))
	assert.Equal(t, http.StatusOK, me(call{cookie: own[2]}))
	assert.Len(t, app.sessions(own[2]), 2)
	calls := fake.Calls()
	assert.Equal(t, http.StatusUnauthorized, me(call{bearer: tokens[0]}), "its frontend token, replayed, stays out")
	assert.Equal(t, calls, fake.Calls(), "without an upstream call")
}
