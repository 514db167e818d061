package middleware_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// TestRefusedTokenLogLines: every refused frontend token gets a debug
// line that says why, a malformed one its own; a replayed signed-out
// token too. None holds the token.
func TestRefusedTokenLogLines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	r := e.do(req{path: "/api/me", bearer: "not a token"})
	require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.Contains(t, e.logs.String(), "sessiongate: malformed frontend token refused")

	bad := e.fake.Issue("olga", time.Hour)
	e.fake.Revoke(bad)
	for range 2 { // rejected upstream, then from the negative cache
		require.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: bad}).StatusCode)
	}
	assert.Equal(t, 2, strings.Count(e.logs.String(), "sessiongate: frontend token refused"), "rejected upstream, then from the negative cache")
	assert.Contains(t, e.logs.String(), "rejected recently")

	front, session := e.signIn("olaf")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	require.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: front}).StatusCode)
	assert.Contains(t, e.logs.String(), "signed out")
	for _, tok := range []string{bad, front} {
		assert.NotContains(t, e.logs.String(), tok)
	}
}

// TestClientIPNotCalledForAnExistingSession: Config.ClientIP is asked only
// for a token that may mint (its address is recorded in the session) or a
// failure that counts, never for a bearer whose session exists.
func TestClientIPNotCalledForAnExistingSession(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	e := newEnv(t, "memory", func(c *middleware.Config) {
		c.ClientIP = func(r *http.Request) string { calls.Add(1); return "192.0.2.10" }
	})
	frontend, _ := e.signIn("pia")
	calls.Store(0)
	r := e.do(req{path: "/api/me", bearer: frontend}) // no cookie: the exchange finds the session
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	assert.Zero(t, calls.Load(), "ClientIP calls for a bearer whose session exists")
}

// respellSession returns token with the unused low bits of its last
// base64url character set: the same 32 bytes, a spelling Token never
// writes.
func respellSession(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[last|1])
}

// TestASessionTokenHasOneSpelling: another base64 spelling of a live
// session token (the same bytes, the last character's unused bits set)
// opens nothing, so no two strings name one session; the real one still
// works.
func TestASessionTokenHasOneSpelling(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, session := e.signIn("nina")
		other := respellSession(session)
		require.NotEqual(t, session, other)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: other}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: other}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	})
}
