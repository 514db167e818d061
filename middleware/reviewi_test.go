package middleware_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// rviPair: b on the defaults (no Config.Now), then a on the same memory
// store with its own Config.Now 2h behind the wall clock. (At the review,
// a's clock became the store's while b's middleware still read time.Now
// for the cookie's Max-Age and RequireRecentAuth; now the first clock,
// b's, is the store's, and every middleware on the store reads it.)
func rviPair(t *testing.T) (a, b *env) {
	life := func(c *middleware.Config) { c.Lifetime = time.Hour }
	b = newEnv(t, "memory", life, func(c *middleware.Config) { c.Now = nil })
	a = newEnvSharing(t, "memory", b, life, func(c *middleware.Config) { c.Store = b.store })
	a.clock.Advance(-2 * time.Hour)
	return a, b
}

// Review I: b's fresh session lives 1h at the store's clock, yet b's
// Set-Cookie says Max-Age=1: a browser drops it after one second.
func TestReviewICookieMaxAgeAtOwnClock(t *testing.T) {
	_, b := rviPair(t)
	frontend := b.fake.Issue("carol", 4*time.Hour)
	r := b.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	c := r.sessionCookie()
	require.NotNil(t, c)
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: c.Value}).StatusCode, "the session is live")
	t.Logf("b's cookie Max-Age: %d s (session lifetime 1h)", c.MaxAge)
	assert.Greater(t, c.MaxAge, 60, "the cookie lives as long as the live session")
}

// Review I: right after a fresh sign-in on b, b's RequireRecentAuth(5m)
// refuses with 401 insufficient_user_authentication: AuthTime is stamped
// at the store's clock (2h behind), compared with b's time.Now. Signing
// in again stamps the same way, so the step-up never succeeds.
func TestReviewIRecentAuthAtOwnClock(t *testing.T) {
	_, b := rviPair(t)
	h := b.auth.Handler(b.auth.RequireRecentAuth(5 * time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	for i := range 2 { // sign in, then step up again
		_, session := b.rvfSignIn("dave")
		w := httptestRecorder(h, http.MethodGet, "/admin", map[string]string{"Cookie": cookieName + "=" + session})
		t.Logf("sign-in %d, RequireRecentAuth(5m): %d %s %s", i, w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String())
		assert.Equal(t, http.StatusOK, w.Code, "a session signed in this instant is recent")
	}
}

// Review I: many middlewares with different Config.Now built at once on
// one memory store, each serving at once (-race): every one serves its
// own fresh sessions.
func TestReviewIConcurrentBuildersOneStore(t *testing.T) {
	base := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour })
	const n = 8
	envs := make([]*env, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			envs[i] = newEnvSharing(t, "memory", base, func(c *middleware.Config) {
				c.Store = base.store
				c.Lifetime = time.Hour
				if i%2 == 0 {
					c.Now = nil
				}
			})
			envs[i].clock.Advance(time.Duration(i) * 10 * time.Minute)
		})
	}
	wg.Wait()
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			e := envs[i]
			frontend := e.fake.Issue("u", 4*time.Hour)
			r, err := e.try(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
			if err != nil || r.StatusCode != http.StatusCreated {
				codes[i] = -1
				return
			}
			r, err = e.try(req{path: "/api/me", cookie: r.sessionCookie().Value})
			if err == nil {
				codes[i] = r.StatusCode
			}
		})
	}
	wg.Wait()
	t.Logf("codes: %v", codes)
	for i, c := range codes {
		assert.Equal(t, http.StatusOK, c, "env %d", i)
	}
}

// Review I: b serves on the defaults (the store reads time.Now); later a
// second middleware (or a Revoker) with its own Config.Now, 2h ahead, is
// built on the store: its clock becomes the store's from then on, for b's
// existing sessions and sign-out marks too. b's live session is refused
// and b's signed-out frontend token mints again.
func TestReviewILateClockFlipsExistingSessions(t *testing.T) {
	life := func(c *middleware.Config) { c.Lifetime = time.Hour }
	b := newEnv(t, "memory", life, func(c *middleware.Config) {
		c.Now = nil
		c.Provider = rvfNoExpiry(c.Provider)
	})
	frontend, out := b.rvfSignIn("erin")
	require.Equal(t, http.StatusNoContent, b.do(req{method: http.MethodDelete, path: "/auth/session", cookie: out}).StatusCode)
	_, live := b.rvfSignIn("frank")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: live}).StatusCode)

	a := newEnvSharing(t, "memory", b, life, func(c *middleware.Config) {
		c.Store = b.store
		c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	})
	_ = a
	r := b.do(req{path: "/api/me", cookie: live})
	t.Logf("b's live session after a is built: %d %s", r.StatusCode, r.body)
	assert.Equal(t, http.StatusOK, r.StatusCode, "a live session stays served")
	r = b.do(req{path: "/api/me", bearer: frontend})
	t.Logf("b's signed-out frontend token after a is built: %d %s", r.StatusCode, r.body)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "a signed-out token never mints again")
}

// Review I: MaxSessionsPerUser and IdleTimeout across b (defaults) and a
// (own clock, 2h behind) on one store judge at the one clock, the first
// one's.
func TestReviewILimitAndIdleAcrossClocks(t *testing.T) {
	mods := func(c *middleware.Config) {
		c.Lifetime = time.Hour
		c.MaxSessionsPerUser = 1
		c.IdleTimeout = 10 * time.Minute
	}
	b := newEnv(t, "memory", mods, func(c *middleware.Config) { c.Now = nil })
	a := newEnvSharing(t, "memory", b, mods, func(c *middleware.Config) { c.Store = b.store })
	a.clock.Advance(-2 * time.Hour)
	_, sb := b.rvfSignIn("gina")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: sb}).StatusCode)
	_, sa := a.rvfSignIn("gina")
	assert.Equal(t, http.StatusUnauthorized, b.do(req{path: "/api/me", cookie: sb}).StatusCode, "evicted by the cap")
	assert.Equal(t, http.StatusOK, a.do(req{path: "/api/me", cookie: sa}).StatusCode)
	assert.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: sa}).StatusCode, "a's session served by b")
	// The store took b's clock, the first: a's own is not used (logged),
	// so moving it idles nothing out, on a or on b.
	a.clock.Advance(11 * time.Minute)
	assert.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: sa}).StatusCode, "b's clock, the store's, has not moved")
	assert.Equal(t, http.StatusOK, a.do(req{path: "/api/me", cookie: sa}).StatusCode, "nor has a's, which is the store's too")
	assert.Contains(t, a.logs.String(), "this one's Config.Now is not used")
}

// Review I: two middlewares on one memory store, both given the same
// Config.Now (time.Now, as Config.Now's doc advises: "give them all the
// same"): the second logs that its clock is not used, though it is the
// same clock. Config.Now says only a Now "that differs" is logged.
func TestReviewISameNowWarns(t *testing.T) {
	b := newEnv(t, "memory", func(c *middleware.Config) { c.Now = time.Now })
	a := newEnvSharing(t, "memory", b, func(c *middleware.Config) { c.Store = b.store; c.Now = time.Now })
	t.Logf("a's log: %s", a.logs.String())
	assert.NotContains(t, a.logs.String(), "Config.Now is not used", "the same clock is used")
	// And a clock that differs is logged.
	c := newEnvSharing(t, "memory", b, func(c *middleware.Config) {
		c.Store = b.store
		c.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	assert.Contains(t, c.logs.String(), "Config.Now is not used")
}

// Review I (held): a Revoker with its own Config.Now (2h behind) built
// first, then a middleware on the defaults: the Revoker lists and revokes
// the middleware's live session, which is then refused.
func TestReviewIRevokerFirstWithClock(t *testing.T) {
	st := store.NewMemory()
	behind := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	rv := middleware.NewRevoker(middleware.Config{Store: st, Secret: testSecret, Now: behind, Lifetime: time.Hour})
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Store = st; c.Now = nil; c.Lifetime = time.Hour })
	_, session := e.rvfSignIn("hank")
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	list, err := rv.Sessions(t.Context(), "plurality", "hank")
	require.NoError(t, err)
	n, err := rv.RevokeUser(t.Context(), "plurality", "hank")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	assert.Equal(t, 1, n)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode)
}
