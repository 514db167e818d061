package middleware_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Config.MaxSessionsPerUser holds on a Redis Cluster store too
// (redisstore.Open with ?cluster=true), where the limit is enforced just
// after the mint rather than in its step (a review found it ignored).
func TestMaxSessionsPerUserOnACluster(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	st, err := redisstore.Open("redis://"+c.Addrs()[0]+"?cluster=true", redisstore.Options{})
	require.NoError(t, err)
	e := newEnv(t, "memory", func(cfg *middleware.Config) {
		cfg.Store = st
		cfg.MaxSessionsPerUser = 1
	})
	_, s1 := e.signIn("uma")
	_, s2 := e.signIn("uma")
	_, s3 := e.signIn("uma")
	live := 0
	for _, s := range []string{s1, s2, s3} {
		if e.do(req{path: "/api/me", cookie: s}).StatusCode == http.StatusOK {
			live++
		}
	}
	list, err := e.auth.Sessions(t.Context(), "plurality", "uma")
	require.NoError(t, err)
	assert.Equal(t, 1, live, "MaxSessionsPerUser 1: one live session")
	assert.Len(t, list, 1)
}
