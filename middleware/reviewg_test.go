package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// Review G: a Config.Now ahead of the wall clock by more than Lifetime
// (a fake clock set in the future). scs stamps the values' expiry on the
// wall clock (time.Now().Add(Lifetime)) and Commit stores it as the
// session's expiry; the memory store now judges that expiry at the
// engine's clock, where it has passed: the session dies when a handler
// puts a value.
func TestReviewGClockAheadValuesKillSession(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour })
	e.clock.Advance(2 * time.Hour)
	frontend := e.fake.Issue("ahead", 4*time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	session := r.sessionCookie().Value
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	r = e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	r = e.do(req{path: "/api/me", cookie: session})
	t.Logf("after a handler put a value: %d %s; logs mention values not saved: %v", r.StatusCode, strings.TrimSpace(r.body),
		strings.Contains(e.logs.String(), "not saved"))
	assert.Equal(t, http.StatusOK, r.StatusCode, "a live session (Lifetime 1h on the engine's clock) is still served")
	r = e.do(req{path: "/api/note", cookie: session})
	assert.Equal(t, "kept", r.body)
}

// Review G: the store keeps the clock of the first engine built on it. A
// Revoker built first from a Config without Now (an admin component set
// up before the middleware, as Revokers are: NewRevoker(Config{Store,
// Secret})) fixes the store's clock at time.Now, and the middleware's
// Config.Now (2h behind, as in review F) is ignored again by End, Commit,
// List: review F's signed-out-token-mints-again comes back, silently.
func TestReviewGRevokerFirstPinsWallClock(t *testing.T) {
	st := store.NewMemory()
	e := rvfBehind(t, func(c *middleware.Config) {
		c.Store = st
		c.Provider = rvfNoExpiry(c.Provider)
		middleware.NewRevoker(middleware.Config{Store: st, Secret: c.Secret}) // built first
	})
	frontend, session := e.rvfSignIn("out")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "the session is gone")
	r := e.do(req{path: "/api/me", bearer: frontend})
	t.Logf("signed-out frontend token: %d %s", r.StatusCode, strings.TrimSpace(r.body))
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "a signed-out token never mints again")
}

// Review G: two middlewares on one memory store, the second's Config.Now
// 2h ahead of the first's. Mint sweeps at the minting engine's reading
// (NewSession.At), not at the store's clock: the second's first mint
// sweeps at +2h and drops the first's live session (Lifetime 1h), which
// its own middleware then refuses.
func TestReviewGTwoClocksSweepDropsLiveSession(t *testing.T) {
	life := func(c *middleware.Config) { c.Lifetime = time.Hour }
	a := newEnv(t, "memory", life)
	b := newEnvSharing(t, "memory", a, life, func(c *middleware.Config) { c.Store = a.store })
	b.clock.Advance(2 * time.Hour)
	_, sa := a.rvfSignIn("alice")
	require.Equal(t, http.StatusOK, a.do(req{path: "/api/me", cookie: sa}).StatusCode)
	a.clock.Advance(2 * time.Minute) // past the sweep's minute on a's clock
	b.clock.Advance(2 * time.Minute)
	_, sb := b.rvfSignIn("bob")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: sb}).StatusCode)
	r := a.do(req{path: "/api/me", cookie: sa})
	t.Logf("a's session after b's mint: %d %s", r.StatusCode, strings.TrimSpace(r.body))
	assert.Equal(t, http.StatusOK, r.StatusCode, "a live session on its middleware's clock is still served")
}

// Review G: one middleware whose clock is 2h behind, then moved back and
// forward: paging through a user's sessions (cursor), the session limit's
// eviction (least recently used first), a sign-out, its mark, and the
// mark outliving a clock jump back.
func TestReviewGClockJumpsPagingLimitSignOut(t *testing.T) {
	e := rvfBehind(t, func(c *middleware.Config) {
		c.MaxSessionsPerUser = 4
		c.Provider = rvfNoExpiry(c.Provider)
	})
	rv := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret, Now: e.clock.Now, Lifetime: time.Hour})
	var fronts, sessions []string
	for i := range 4 {
		f, s := e.rvfSignIn("pager")
		fronts, sessions = append(fronts, f), append(sessions, s)
		e.clock.Advance(time.Duration(i+1) * time.Minute)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode)
	}
	// Clock back 30 minutes: every session still live; touch session 0 so
	// that 1 is the least recently used... (keep-alive may not be due:
	// rely on mint order instead).
	e.clock.Advance(-30 * time.Minute)
	for i, s := range sessions {
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode, "session %d after the clock went back", i)
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		p, err := rv.SessionsPage(context.Background(), "plurality", "pager", middleware.PageRequest{Limit: 1, Cursor: cursor})
		require.NoError(t, err)
		for _, s := range p.Sessions {
			assert.False(t, seen[s.ID], "listed twice: %s", s.ID)
			seen[s.ID] = true
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	assert.Len(t, seen, 4, "paging lists each live session once")
	// Clock forward 40 minutes, a fifth sign-in: one session evicted (the limit).
	e.clock.Advance(40 * time.Minute)
	_, s5 := e.rvfSignIn("pager")
	live := 0
	for _, s := range append(sessions, s5) {
		if e.do(req{path: "/api/me", cookie: s}).StatusCode == http.StatusOK {
			live++
		}
	}
	assert.Equal(t, 4, live, "the limit keeps 4")
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s5}).StatusCode)
	// Sign out s5; jump back 2h and forward again: its frontend token
	// never mints again while its mark lasts.
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: s5}).StatusCode)
	e.clock.Advance(-2 * time.Hour)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s5}).StatusCode)
	e.clock.Advance(2*time.Hour + time.Minute)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s5}).StatusCode)
	n, err := rv.RevokeUser(context.Background(), "plurality", "pager")
	require.NoError(t, err)
	t.Logf("revoked %d", n)
	assert.Equal(t, 3, n, "the other live sessions")
}
