package middleware_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// Review H: one memory store, two middlewares: b on the defaults (no
// Config.Now: time.Now), a with its own Config.Now 2h ahead (Lifetime 1h).
// Only a's clock is handed to the store (DefaultNow), so End, Commit, List,
// Find and the sweep judge b's sessions at a's clock, while b's hot read
// judges them at time.Now: b's signed-out frontend token mints again (End
// deletes instead of marking), and a's first mint sweeps b's live session.
func TestReviewHDefaultClockMiddlewareBesideFakeClock(t *testing.T) {
	life := func(c *middleware.Config) { c.Lifetime = time.Hour }
	b := newEnv(t, "memory", life, func(c *middleware.Config) {
		c.Now = nil // the defaults: time.Now
		c.Provider = rvfNoExpiry(c.Provider)
	})
	a := newEnvSharing(t, "memory", b, life, func(c *middleware.Config) { c.Store = b.store })
	a.clock.Advance(2 * time.Hour)

	// 1. sign-out on b, its frontend token again.
	frontend, session := b.rvfSignIn("bob")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: session}).StatusCode)
	require.Equal(t, http.StatusNoContent, b.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	r := b.do(req{path: "/api/me", bearer: frontend})
	t.Logf("b's signed-out frontend token: %d %s", r.StatusCode, strings.TrimSpace(r.body))
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "a signed-out token never mints again")

	// 2. b's live session, then a mints (its sweep runs at the store's clock, a's).
	_, live := b.rvfSignIn("carol")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: live}).StatusCode)
	a.clock.Advance(2 * time.Minute)
	_, sa := a.rvfSignIn("alice")
	require.Equal(t, http.StatusOK, a.do(req{path: "/api/me", cookie: sa}).StatusCode)
	r = b.do(req{path: "/api/me", cookie: live})
	t.Logf("b's live session after a's mint: %d %s", r.StatusCode, strings.TrimSpace(r.body))
	assert.Equal(t, http.StatusOK, r.StatusCode, "b's live session (1h on b's clock) is still served")
}

// Review H: a Revoker built as README's admin component is (NewRevoker
// with the middleware's Store and Secret, no Now) beside a middleware whose
// Config.Now is 2h behind the wall clock (review F's setup). a2635cc keeps
// the Revoker from setting the store's clock, but the Revoker's engine
// still judges liveness at time.Now (listPage's e.live, markUntil): every
// session the middleware serves is "expired" to it, RevokeUser ends none
// and the middleware keeps serving the revoked user.
func TestReviewHDefaultRevokerBesideClockBehind(t *testing.T) {
	e := rvfBehind(t)
	rv := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret})
	_, session := e.rvfSignIn("mallory")
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	list, err := rv.Sessions(t.Context(), "plurality", "mallory")
	require.NoError(t, err)
	n, err := rv.RevokeUser(t.Context(), "plurality", "mallory")
	require.NoError(t, err)
	r := e.do(req{path: "/api/me", cookie: session})
	t.Logf("listed %d, revoked %d; the session after RevokeUser: %d", len(list), n, r.StatusCode)
	assert.Len(t, list, 1, "the Revoker lists the live session")
	assert.Equal(t, 1, n, "RevokeUser ends the live session")
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "a revoked user is not served")
}

// wrappedStore is a user's wrapper of a store (to count or log its
// calls), as Go lets anyone write for store.Store.
type wrappedStore struct{ store.Store }

// Review H, then review K: a memory store behind a user's wrapper first
// hid its clock from the engine and judged by the wall clock, so that with
// a Now 2h behind it a valid sign-in was refused (401). Every store now
// shares its clock through store.Store itself (backend.Clocked), which
// the wrapper embeds: with a Now 2h behind the wall clock, the wrapped
// store works as the bare one (rvfBehind's tests): it mints, serves,
// keeps the handler's values, signs out, and the signed-out token never
// mints again.
func TestReviewHWrappedMemoryStoreFollowsClock(t *testing.T) {
	e := rvfBehind(t, func(c *middleware.Config) {
		c.Store = wrappedStore{store.NewMemory()}
		c.Provider = rvfNoExpiry(c.Provider)
	})
	frontend, session := e.rvfSignIn("wrapped")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	r := e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	r = e.do(req{path: "/api/note", cookie: session})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	assert.Contains(t, r.body, "kept", "the handler's values are kept")
	assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "a signed-out session is not served")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: frontend}).StatusCode, "a signed-out token never mints again")
}
