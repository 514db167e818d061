package middleware_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// nearStore returns a store on srv with a near cache of cfg, on a pool
// of its own (one app instance), closed when t ends.
func nearStore(t *testing.T, srv *storetest.Server, cfg redisstore.NearCache) store.Store {
	t.Helper()
	pool, err := redisstore.NewPool(srv.URL)
	require.NoError(t, err)
	st := redisstore.New(pool, redisstore.Options{Timeout: testStoreTimeout, NearCache: &cfg})
	t.Cleanup(func() {
		st.(io.Closer).Close()
		pool.Close()
	})
	return st
}

// Two app instances share a Redis, each with a strict near cache. A
// session used on both (so cached by B) and signed out on A is refused by
// B as soon as A's 204 is in: over many rounds, never served. And B's
// steady requests did not read Redis.
func TestNearCacheSignOutOnOneInstanceIsEverywhere(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	cfg := redisstore.NearCache{Strict: true}
	a := newEnvOnStore(t, srv, nearStore(t, srv, cfg))
	b := newEnvSharing(t, "redis", a, func(c *middleware.Config) { c.Store = nearStore(t, srv, cfg) })

	const rounds = 20
	served, steadyGets := 0, 0
	for range rounds {
		_, session := a.signIn("gil")
		for _, e := range []*env{a, b, b} {
			require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
		}
		before := b.commandCalls()["get"]
		require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: session}).StatusCode)
		steadyGets += b.commandCalls()["get"] - before

		require.Equal(t, http.StatusNoContent, a.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
		if r := b.do(req{path: "/api/me", cookie: session}); r.StatusCode != http.StatusUnauthorized {
			served++
		}
	}
	assert.Zero(t, served, "B served a session signed out on A")
	assert.Less(t, steadyGets, rounds, "B answered steady requests from its near cache")
	t.Logf("%d sign-outs on A: B served %d after the 204; B's steady requests read Redis %d times of %d", rounds, served, steadyGets, rounds)
}
