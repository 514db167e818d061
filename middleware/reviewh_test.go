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
		c.Provider = rvfNoExpiry{c.Provider}
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

// Review H: a memory store behind a user's wrapper hides its clock
// (backend.Clocked) from the engine, and judges by the wall clock, as
// Redis does: Config.Now must then read the wall clock (Config.Now says
// so). With a Now 2h behind it, the store refuses a mint whose expiry
// the wall clock has passed: 401, the token expired, never a 503 (the
// memory store is never unavailable) nor a session the store does not
// hold. On the wall clock, the wrapped store works as the bare one.
func TestReviewHWrappedMemoryStoreIgnoresClock(t *testing.T) {
	e := rvfBehind(t, func(c *middleware.Config) {
		c.Store = wrappedStore{store.NewMemory()}
		c.Provider = rvfNoExpiry{c.Provider}
	})
	frontend := e.fake.Issue("wrapped", 4*time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	t.Logf("a sign-in through a wrapped store, Now 2h behind the wall clock: %d %s", r.StatusCode, strings.TrimSpace(r.body))
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.Contains(t, r.body, "invalid_token")

	w := newEnv(t, "memory", func(c *middleware.Config) {
		c.Lifetime = time.Hour
		c.Store = wrappedStore{store.NewMemory()}
		c.Provider = rvfNoExpiry{c.Provider}
		c.Now = time.Now
	})
	frontend, session := w.rvfSignIn("wrapped-wall")
	assert.Equal(t, http.StatusOK, w.do(req{path: "/api/me", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusNoContent, w.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, w.do(req{path: "/api/me", bearer: frontend}).StatusCode, "a signed-out token never mints again")
}
