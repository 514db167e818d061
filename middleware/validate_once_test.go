package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func TestExchangeMintsASession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		token := e.fake.Issue("alice", time.Hour)
		r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: token, hdr: map[string]string{"User-Agent": "test-agent/1.0"}})
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)

		c := r.sessionCookie()
		require.NotNil(t, c)
		assert.Len(t, c.Value, 43, "256-bit base64url session token")
		assert.Equal(t, c.Value, r.Header.Get("X-Session-Token"), "header clients get the same token")
		assert.True(t, c.HttpOnly)
		assert.True(t, c.Secure, "Secure by default")
		assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
		assert.Equal(t, "/", c.Path)
		assert.InDelta(t, (time.Hour + provider.DefaultLeeway).Seconds(), c.MaxAge, 60, "capped at the token's expiry (with the one leeway), not the 24 h lifetime")
		assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
		assert.NotContains(t, r.body, c.Value, "the body never carries the token")
		assert.NotContains(t, r.body, token)

		body := r.json(t)
		assert.Equal(t, map[string]any{"id": "alice", "provider": "plurality"}, body["user"])
		session := body["session"].(map[string]any)
		assert.Equal(t, "test-agent/1.0", session["userAgent"])
		assert.Equal(t, "127.0.0.1", session["ip"])
		assert.Equal(t, true, session["current"])
		assert.EqualValues(t, 1, e.fake.Calls())

		again := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: token})
		assert.Equal(t, http.StatusOK, again.StatusCode, "the token's session already exists")
		assert.Equal(t, c.Value, again.sessionCookie().Value)
		assert.EqualValues(t, 1, e.fake.Calls())

		noToken := e.do(req{method: http.MethodPost, path: "/auth/session"})
		assert.Equal(t, http.StatusUnauthorized, noToken.StatusCode)
	})
}

func TestSessionCarriedByCookieOrHeaderNeedsNoUpstream(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, session := e.signIn("bob")
		var before map[string]int
		if e.redis != nil {
			before = e.commandCalls()
		}
		for i := 0; i < 20; i++ {
			r := e.do(req{path: "/api/me", cookie: session})
			require.Equal(t, http.StatusOK, r.StatusCode, r.body)
			assert.JSONEq(t, `{"user":{"id":"bob","provider":"plurality"}}`, r.body)
			assert.Nil(t, r.sessionCookie(), "nothing to set on a reused session")
			r = e.do(req{path: "/api/me", header: session})
			require.Equal(t, http.StatusOK, r.StatusCode)
		}
		assert.EqualValues(t, 1, e.fake.Calls(), "one upstream call: the exchange")
		if e.redis != nil {
			after := e.commandCalls()
			assert.Equal(t, before["get"]+40, after["get"], "exactly one store read per request")
			for _, cmd := range []string{"set", "zadd", "del", "exec", "evalsha", "eval"} {
				assert.Equal(t, before[cmd], after[cmd], "no %s on a reused session", cmd)
			}
		}
	})
}

func TestConcurrentFirstRequestsShareOneUpstreamCall(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		token := e.fake.Issue("carol", time.Hour)
		e.fake.SetFault(providertest.Fault{Delay: time.Second})

		// The first client starts the exchange and leaves once its call
		// has reached the upstream, long before the upstream answers.
		leaving, cancel := context.WithCancel(context.Background())
		firstDone := make(chan error, 1)
		go func() {
			_, err := e.try(req{path: "/api/me", bearer: token, ctx: leaving})
			firstDone <- err
		}()
		require.Eventually(t, func() bool { return e.fake.Calls() == 1 }, time.Minute, time.Millisecond)
		cancel()

		const n = 200
		var wg sync.WaitGroup
		statuses := make([]int, n)
		bodies := make([]string, n)
		sessions := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.try(req{path: "/auth/session", bearer: token})
				if err != nil {
					return
				}
				statuses[i], bodies[i] = r.StatusCode, r.body
				// Only the requests that shared the mint are handed the
				// session token: the public id names the session.
				sessions[i] = sessionIDIn(r)
			}()
		}
		wg.Wait()
		assert.ErrorIs(t, <-firstDone, context.Canceled)
		for i := range n {
			require.Equal(t, http.StatusOK, statuses[i], "request %d: %s\n%s", i, bodies[i], e.logs)
			require.NotEmpty(t, sessions[i])
			require.Equal(t, sessions[0], sessions[i], "all share one session")
		}
		assert.EqualValues(t, 1, e.fake.Calls(), "one upstream call for 201 concurrent requests")
		entries, err := backendtest.ListAll(context.Background(), e.store, "plurality:carol")
		require.NoError(t, err)
		assert.Len(t, entries, 1, "one session minted")
	})
}

func TestBearerOnlyClientValidatesOncePerToken(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		token := e.fake.Issue("dave", time.Hour)
		r := e.do(req{path: "/api/me", bearer: token})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		first := r.sessionCookie().Value
		assert.Equal(t, first, r.Header.Get("X-Session-Token"), "the mint hands the session out")
		var before map[string]int
		if e.redis != nil {
			before = e.commandCalls()
		}
		for i := 0; i < 30; i++ {
			r := e.do(req{path: "/api/me", bearer: token})
			require.Equal(t, http.StatusOK, r.StatusCode, r.body)
			// A client that keeps neither is not sent the session cookie
			// and header again.
			assert.Empty(t, r.Header.Get("X-Session-Token"))
			assert.Nil(t, r.sessionCookie())
		}
		assert.EqualValues(t, 1, e.fake.Calls(), "one upstream call for the token's whole life")
		defer func() {
			// Checked after the counted requests: the same session every time.
			assert.Equal(t, idOf(t, e, first), sessionIDIn(e.do(req{path: "/auth/session", bearer: token})), "the same session every time")
		}()
		if e.redis == nil {
			return
		}
		after := e.commandCalls()
		assert.Equal(t, before["get"]+30, after["get"], "one store read per bearer-only request")
		for _, cmd := range []string{"set", "zadd", "del", "exec", "evalsha", "eval"} {
			assert.Equal(t, before[cmd], after[cmd], "no %s for a bearer-only request", cmd)
		}
		keys, err := redis.Strings(e.redis.Do("KEYS", "*"))
		require.NoError(t, err)
		for _, k := range keys {
			assert.NotContains(t, k, token)
			assert.NotContains(t, k, first)
			v, _ := redis.Bytes(e.redis.Do("DUMP", k))
			assert.NotContains(t, string(v), first, "no raw session token in %s", k)
			assert.NotContains(t, string(v), token, "no raw frontend token in %s", k)
		}
		assert.Len(t, keys, 2, "session and user index: %v", keys)
	})
}

func TestSwitchingUsersReplacesTheSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		aliceToken, aliceSession := e.signIn("alice")
		bobToken := e.fake.Issue("bob", time.Hour)

		r := e.do(req{path: "/api/me", cookie: aliceSession, bearer: bobToken})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.JSONEq(t, `{"user":{"id":"bob","provider":"plurality"}}`, r.body)
		bobSession := r.sessionCookie()
		require.NotNil(t, bobSession, "a new session for the new token")
		assert.NotEqual(t, aliceSession, bobSession.Value)

		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: aliceSession}).StatusCode, "the old session ended")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: bobSession.Value}).StatusCode)
		// Replacing a session is not a sign-out: alice's token was never
		// signed out, so it may sign in again (a new session, validated
		// again).
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: aliceToken}).StatusCode, "a replaced session's token is not signed out")
		assert.EqualValues(t, 3, e.fake.Calls())
	})
}

func TestPlantedSessionIsReplacedOnExchange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, attacker := e.signIn("mallory")
	victimToken := e.fake.Issue("victim", time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", cookie: attacker, bearer: victimToken})
	require.Equal(t, http.StatusCreated, r.StatusCode)
	assert.NotEqual(t, attacker, r.sessionCookie().Value, "a fresh token, never the carried one")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: attacker}).StatusCode)
}

func TestNegativeCache(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		token := e.fake.Issue("erin", time.Hour)
		e.fake.Revoke(token)
		for i := 0; i < 100; i++ {
			r := e.do(req{path: "/api/me", bearer: token})
			require.Equal(t, http.StatusUnauthorized, r.StatusCode)
			assert.Equal(t, "invalid_token", r.json(t)["error"])
		}
		assert.EqualValues(t, 1, e.fake.Calls(), "one upstream call per negative-cache period")
		e.clock.Advance(31 * time.Second)
		e.do(req{path: "/api/me", bearer: token})
		assert.EqualValues(t, 2, e.fake.Calls(), "asked again once the period is over")
	})
}

func TestUpstreamErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	token := e.fake.Issue("frank", time.Hour)
	e.fake.SetFault(providertest.Fault{Status: http.StatusBadGateway})
	for i := 0; i < 3; i++ {
		r := e.do(req{path: "/api/me", bearer: token})
		require.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
		assert.Equal(t, "provider_unavailable", r.json(t)["error"])
		assert.Equal(t, "5", r.Header.Get("Retry-After"))
	}
	assert.EqualValues(t, 3, e.fake.Calls())
	e.fake.SetFault(providertest.Fault{})
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: token}).StatusCode, "the token was never cached as rejected")
}

func TestMalformedTokensNeverReachUpstreamOrStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	before := e.commandCalls()
	for _, bad := range []string{strings.Repeat("a", provider.MaxTokenSize+1), "../../etc/passwd", "tok en", "a,b", "é", "a\"b"} {
		r := e.do(req{path: "/api/me", hdr: map[string]string{"Authorization": "Bearer " + bad}})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		assert.Equal(t, "invalid_token", r.json(t)["error"])
		assert.NotContains(t, r.body, bad, "errors never echo a token")
	}
	for _, bad := range []string{"../../x", strings.Repeat("A", 10<<10), "short", strings.Repeat("A", 42) + "!"} {
		r := e.do(req{path: "/api/me", cookie: bad})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		assert.Equal(t, "unauthorized", r.json(t)["error"])
		r = e.do(req{path: "/api/me", header: bad})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}
	h := e.auth.RequireSession(http.NotFoundHandler())
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer tok\x00en"}, {"X-Session-Token": strings.Repeat("A", 42) + "\x00"},
		{"Cookie": cookieName + "=" + strings.Repeat("A", 42) + "\x00"},
	} {
		assert.Equal(t, http.StatusUnauthorized, httptestRecorder(h, "GET", "/", hdr).Code, "NUL bytes: %q", hdr)
	}
	assert.EqualValues(t, 0, e.fake.Calls())
	after := e.commandCalls()
	assert.Equal(t, before["get"], after["get"], "no store read for malformed credentials")
}

func TestSessionLifetimeIsCappedByTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	token := e.fake.Issue("gina", 10*time.Minute)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: token})
	require.Equal(t, http.StatusCreated, r.StatusCode)
	session := r.sessionCookie().Value
	assert.InDelta(t, (10*time.Minute + provider.DefaultLeeway).Seconds(), r.sessionCookie().MaxAge, 60, "the token's exp and the one leeway")
	e.clock.Advance(9 * time.Minute)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	e.clock.Advance(2 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "expired with the token")

	long := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = 5 * time.Minute })
	r = long.do(req{method: http.MethodPost, path: "/auth/session", bearer: long.fake.Issue("gina", time.Hour)})
	assert.InDelta(t, 300, r.sessionCookie().MaxAge, 60, "and by the configured lifetime")
}

func TestHandlersKeepTheirOwnSessionValues(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, session := e.signIn("hank")
		assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodPost, path: "/api/note?v=hello", header: session}).StatusCode)
		assert.Equal(t, "hello", e.do(req{path: "/api/note", cookie: session}).body)
		assert.Equal(t, "hello hank", e.do(req{path: "/public", cookie: session}).body, "the record survives the handler's commit")
	})
}

func TestRequireSessionWithoutHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	h := e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := middleware.UserFrom(r.Context())
		w.Write([]byte(u.UserID))
	}))
	token := e.fake.Issue("ivy", time.Hour)
	rec := httptestRecorder(h, "GET", "/", map[string]string{"Authorization": "Bearer " + token})
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ivy", rec.Body.String())
	rec = httptestRecorder(h, "GET", "/", nil)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
}

// sessionIDIn returns the public id of the session a GET /auth/session
// answer names, "" for any other answer.
func sessionIDIn(r resp) string {
	var v struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	json.Unmarshal([]byte(r.body), &v)
	return v.Session.ID
}
