package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sessiongate/sessiongate/provider/providertest"
)

func TestMetricsCountWhatHappened(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	frontend, session := e.signIn("mia") // exchange, upstream call, mint
	for range 5 {
		e.do(req{path: "/api/me", cookie: session}) // reused, cache hit after the first
	}
	e.do(req{path: "/api/me", bearer: frontend}) // exchange, reused by its token
	bad := e.fake.Issue("mia", time.Hour)
	e.fake.Revoke(bad)
	e.do(req{path: "/api/me", bearer: bad}) // exchange, upstream call, rejected
	e.do(req{path: "/api/me", bearer: bad}) // exchange, negative cache, rejected
	e.fake.SetFault(providertest.Fault{Status: 500})
	e.do(req{path: "/api/me", bearer: e.fake.Issue("mia", time.Hour)}) // exchange, upstream error
	e.fake.SetFault(providertest.Fault{})
	e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}) // reused, ended
	e.redis.Stop()
	e.do(req{path: "/api/me", header: session}) // store error

	m := e.auth.Metrics()
	assert.EqualValues(t, 5, m.Exchanges, "sign-in, the token resent, the bad token twice, the 500")
	assert.EqualValues(t, 1, m.SessionsMinted)
	assert.EqualValues(t, 1, m.SessionsEnded)
	assert.EqualValues(t, 7, m.SessionsReused, "5 by cookie, 1 by its frontend token, 1 to sign out")
	assert.EqualValues(t, 3, m.UpstreamCalls)
	assert.EqualValues(t, 1, m.UpstreamErrors)
	assert.Greater(t, m.UpstreamSeconds, 0.0)
	assert.EqualValues(t, 2, m.TokensRejected)
	assert.EqualValues(t, 1, m.NegativeCacheHits)
	assert.GreaterOrEqual(t, m.RecordCacheHits, int64(5))
	assert.GreaterOrEqual(t, m.RecordCacheMisses, int64(1))
	assert.EqualValues(t, 1, m.StoreErrors)
	assert.EqualValues(t, e.fake.Calls(), m.UpstreamCalls, "every upstream call is counted")
}
