package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// TestTheRecordCacheNeverLendsAPublicID: two sessions minted from one
// frontend token within one millisecond (same user, address, agent and
// claims) have identical records but different nonces; the decoded-record
// cache must not serve the second as the first (its public id, its
// nonce), or a sign-out of one device would end the other.
func TestTheRecordCacheNeverLendsAPublicID(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		t0 := time.Now().Truncate(time.Millisecond)
		now := func() time.Time { return t0 }
		e := newEnv(t, kind, func(c *middleware.Config) { c.Now = now })
		tokA, tokB := e.fake.Issue("ann", time.Hour), e.fake.Issue("ann", time.Hour)
		// Device 1: A, then continued with B (same public id).
		a := e.exchange(tokA)
		require.Equal(t, http.StatusCreated, a.StatusCode, a.body)
		b := e.do(req{path: "/api/me", cookie: a.sessionCookie().Value, bearer: tokB})
		require.Equal(t, http.StatusOK, b.StatusCode, b.body)
		sb := b.sessionCookie().Value
		// Device 2: bearer-only with A (a session of its own).
		a2 := e.exchange(tokA)
		require.Equal(t, http.StatusCreated, a2.StatusCode, a2.body)
		s2 := a2.sessionCookie().Value

		list := e.do(req{path: "/auth/sessions", cookie: sb}).json(t)["sessions"].([]any)
		require.Len(t, list, 2)
		ids := map[string]int{}
		for _, s := range list {
			ids[s.(map[string]any)["id"].(string)]++
		}
		assert.Len(t, ids, 2, "the list decodes records itself: %v", ids)
		// The request path (cache) sees device 2 under device 1's id.
		assert.NotEqual(t, idOf(t, e, sb), idOf(t, e, s2), "device 2's requests carry device 1's public id")

		// Device 2 signs itself out: device 1 must stay.
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: s2}).StatusCode)
		me := e.do(req{path: "/api/me", cookie: sb})
		assert.Equal(t, http.StatusOK, me.StatusCode, "device 2's own sign-out ended device 1 (its 'heir' by the duplicated id): %s", me.body)
	})
}

// idOf returns the public id of the session cookie opens.
func idOf(t *testing.T, e *env, cookie string) string {
	t.Helper()
	r := e.do(req{path: "/auth/session", cookie: cookie})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	return r.json(t)["session"].(map[string]any)["id"].(string)
}
