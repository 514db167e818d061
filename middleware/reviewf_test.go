package middleware_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
)

// Review F: a Config.Now behind the wall clock (a fake clock set in the
// past, as tests often do; the provider on the same clock). The memory
// store now judges its hot read (LookupAt) and Mint at the engine's
// clock, but Commit/Touch (update), End, List and Find at time.Now():
// a session whose expiry (stamped on the engine's clock) is in the wall
// clock's past is live to requests and dead to everything else.
func rvfBehind(t *testing.T, mods ...func(*middleware.Config)) *env {
	mods = append([]func(*middleware.Config){func(c *middleware.Config) { c.Lifetime = time.Hour }}, mods...)
	e := newEnv(t, "memory", mods...)
	e.clock.Advance(-2 * time.Hour) // the engine 2h behind the wall clock
	return e
}

// rvfSignIn signs in with a frontend token the fake (which checks exp at
// time.Now()) still accepts: 4h on the test clock, 2h of wall clock.
func (e *env) rvfSignIn(user string) (frontend, session string) {
	e.t.Helper()
	frontend = e.fake.Issue(user, 4*time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	require.Equal(e.t, http.StatusCreated, r.StatusCode, r.body)
	return frontend, r.sessionCookie().Value
}

// The handler's values are lost: POST /api/note answers 204, the next
// request reads "".
func TestReviewFClockBehindValuesLost(t *testing.T) {
	e := rvfBehind(t)
	_, session := e.rvfSignIn("val")
	r := e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	r = e.do(req{path: "/api/note", cookie: session})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	t.Logf("note read back: %q; logged \"values not saved\": %v", r.body, strings.Contains(e.logs.String(), "session values not saved"))
	assert.Equal(t, "kept", r.body, "the value the handler put")
}

// The listing disagrees with what requests see, and "sign out everywhere"
// misses the other device: List drops index entries at time.Now().
func TestReviewFClockBehindListAndSignOutAll(t *testing.T) {
	e := rvfBehind(t)
	_, a := e.rvfSignIn("two")
	_, b := e.rvfSignIn("two")
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: a}).StatusCode)
	require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: b}).StatusCode)
	r := e.do(req{path: "/auth/sessions", cookie: a})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	n := strings.Count(r.body, `"id"`)
	t.Logf("listing: %s", strings.TrimSpace(r.body))
	assert.Equal(t, 2, n, "both live sessions listed")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: a}).StatusCode)
	r = e.do(req{path: "/api/me", cookie: b})
	t.Logf("other device after sign-out everywhere: %d", r.StatusCode)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "signed out everywhere")
}

// IdleTimeout with the clock behind: the keep-alive (Touch -> update at
// time.Now()) is dropped, so an active session idles out.
func TestReviewFClockBehindKeepAliveLost(t *testing.T) {
	e := rvfBehind(t, func(c *middleware.Config) { c.IdleTimeout = 10 * time.Minute })
	_, session := e.rvfSignIn("idle")
	for range 3 {
		e.clock.Advance(8 * time.Minute)
		r := e.do(req{path: "/api/me", cookie: session})
		t.Logf("after 8 more minutes, active: %d", r.StatusCode)
		assert.Equal(t, http.StatusOK, r.StatusCode, "kept alive by its requests")
	}
}

// rvfNoExpiry is a provider that says nothing of its tokens' expiry
// (Identity.Expiry zero, which provider.Identity allows): the marks of a
// sign-out then last Lifetime from the engine's now (markUntil).
func rvfNoExpiry(p provider.Provider) provider.Provider {
	return editIdentity{p, func(id *provider.Identity) { id.Expiry = time.Time{} }}
}

// A signed-out frontend token mints again: End judges Until (engine now +
// Lifetime) at time.Now(), finds it past, and deletes the key instead of
// marking it; the hot read (engine clock) then finds nothing and mints.
func TestReviewFClockBehindSignedOutTokenMintsAgain(t *testing.T) {
	e := rvfBehind(t, func(c *middleware.Config) { c.Provider = rvfNoExpiry(c.Provider) })
	frontend, session := e.rvfSignIn("out")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "the session is gone")
	calls := e.fake.Calls()
	r := e.do(req{path: "/api/me", bearer: frontend})
	t.Logf("signed-out frontend token: %d %s (upstream calls %d)", r.StatusCode, strings.TrimSpace(r.body), e.fake.Calls()-calls)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "a signed-out token never mints again")
}
