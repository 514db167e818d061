package middleware_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
)

const (
	chromeMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.51 Safari/537.36"
	firefoxWin   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"
	safariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)

// threeDevices signs one user in from three devices, plus another user.
func threeDevices(e *env) (tokens, sessions [3]string) {
	for i, ua := range []string{chromeMac, firefoxWin, safariIPhone} {
		tokens[i], sessions[i] = e.signInAs("uma", ua)
	}
	e.signIn("someone-else")
	return
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, sessions := threeDevices(e)
		r := e.do(req{path: "/auth/sessions", cookie: sessions[0]})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		list := r.json(t)["sessions"].([]any)
		require.Len(t, list, 3, "only this user's sessions")
		devices := map[string]bool{}
		current := 0
		for _, item := range list {
			s := item.(map[string]any)
			assert.Equal(t, "uma", s["userId"])
			dev := s["device"].(map[string]any)
			devices[dev["family"].(string)+"/"+dev["os"].(map[string]any)["family"].(string)+"/"+dev["device"].(map[string]any)["family"].(string)] = true
			if s["current"] == true {
				current++
				assert.Equal(t, chromeMac, s["userAgent"])
			}
			assert.Len(t, s["id"], 22)
		}
		assert.Equal(t, 1, current)
		assert.Equal(t, map[string]bool{"Chrome/Mac OS X/Mac": true, "Firefox/Windows/Computer": true, "Safari/iOS/iPhone": true}, devices)
		for _, tok := range sessions {
			assert.NotContains(t, r.body, tok, "no session token in the list")
		}
	})
}

func TestSignOutOthersThenAll(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		tokens, sessions := threeDevices(e)
		r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: sessions[0]})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.JSONEq(t, `{"signedOut": 2}`, r.body)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: sessions[0]}).StatusCode, "the current one stays")
		for i := 1; i < 3; i++ {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessions[i]}).StatusCode)
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: tokens[i]}).StatusCode, "logout means logout")
		}
		calls := e.fake.Calls()

		r = e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: sessions[0]})
		require.Equal(t, http.StatusNoContent, r.StatusCode)
		c := r.sessionCookie()
		require.NotNil(t, c, "the cookie is cleared")
		assert.LessOrEqual(t, c.MaxAge, 0)
		assert.Equal(t, "", c.Value)
		for i := range 3 {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessions[i]}).StatusCode)
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: tokens[i]}).StatusCode)
		}
		assert.Equal(t, calls, e.fake.Calls(), "signed-out tokens are refused without asking the upstream")
		other, err := e.auth.Sessions(context.Background(), "plurality", "someone-else")
		require.NoError(t, err)
		assert.Len(t, other, 1, "other users are untouched")
	})
}

func TestSignOutThisSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	token, session := e.signIn("vera")
	_, second := e.signIn("vera")
	r := e.do(req{method: http.MethodDelete, path: "/auth/session", header: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode)
	assert.Nil(t, r.sessionCookie(), "a header client's cookie, if any, is not the session it signed out")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: token}).StatusCode)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: second}).StatusCode)
	n, err := redis.Int(e.redis.Do("EXISTS", "scs:session:"+format.KeyOf(session)))
	require.NoError(t, err)
	assert.Zero(t, n, "gone from the store")
}

func TestRevokeOneSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, sessions := threeDevices(e)
		_, stranger := e.signIn("stranger")
		strangerID := e.do(req{path: "/auth/session", cookie: stranger}).json(t)["session"].(map[string]any)["id"].(string)
		list, err := e.auth.Sessions(context.Background(), "plurality", "uma")
		require.NoError(t, err)
		var target string
		for _, s := range list {
			if s.UserAgent == firefoxWin {
				target = s.ID
			}
		}

		assert.Equal(t, http.StatusNotFound, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + strangerID, cookie: sessions[0]}).StatusCode, "not the owner's")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: stranger}).StatusCode, "and nothing changed")
		assert.Equal(t, http.StatusNotFound, e.do(req{method: http.MethodDelete, path: "/auth/sessions/nope", cookie: sessions[0]}).StatusCode)

		r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + target, cookie: sessions[0]})
		assert.Equal(t, http.StatusNoContent, r.StatusCode)
		assert.Nil(t, r.sessionCookie(), "revoking another device keeps this cookie")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessions[1]}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: sessions[0]}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: sessions[2]}).StatusCode)
	})
}

func TestBackendRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	_, a := e.signIn("walt")
	_, b := e.signIn("walt")
	n, err := e.auth.RevokeUser(context.Background(), "plurality", "walt")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: a}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: b}).StatusCode)

	_, c := e.signIn("xena")
	_, d := e.signIn("xena")
	s, ok := sessionOf(e, c)
	require.True(t, ok)
	require.NotEmpty(t, s.Identity.SessionID, "Plurality's uniqueSessionId is kept")
	n, err = e.auth.RevokeUpstreamSession(context.Background(), "plurality", "xena", s.Identity.SessionID)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the sessions minted from that upstream sign-in")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: c}).StatusCode)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: d}).StatusCode)
}

// TestRevokerWithoutAProvider: a backend job with the middleware's store
// and secret, and no provider, lists and ends a user's sessions, and the
// frontend tokens they were minted from cannot sign in again.
func TestRevokerWithoutAProvider(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		front, a := e.signIn("yuri")
		_, b := e.signIn("yuri")
		_, other := e.signIn("zack")
		job := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret, Now: e.clock.Now})
		ctx := context.Background()
		list, err := job.Sessions(ctx, "plurality", "yuri")
		require.NoError(t, err)
		assert.Len(t, list, 2)

		n, err := job.RevokeUser(ctx, "plurality", "yuri")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		for _, s := range []string{a, b} {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s}).StatusCode)
		}
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: front}).StatusCode, "the token is marked signed out")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: other}).StatusCode, "another user is untouched")
		assert.EqualValues(t, 3, e.fake.Calls(), "the job called no provider")

		assert.Panics(t, func() { middleware.NewRevoker(middleware.Config{Store: e.store}) }, "no secret: it would mark nothing that the middleware reads")
		assert.Panics(t, func() { middleware.NewRevoker(middleware.Config{Secret: testSecret}) }, "no store: a new memory store holds none of the middleware's sessions")
	})
}

func sessionOf(e *env, session string) (*middleware.Session, bool) {
	var got *middleware.Session
	h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = middleware.SessionFrom(r.Context())
	}))
	httptestRecorder(h, "GET", "/", map[string]string{"X-Session-Token": session})
	return got, got != nil
}

func TestSignOutRoutesRefuseCrossOriginCookies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, session := e.signIn("yann")
	for _, path := range []string{"/auth/session", "/auth/sessions", "/auth/sessions/others"} {
		r := e.do(req{method: http.MethodDelete, path: path, cookie: session, hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		assert.Equal(t, http.StatusForbidden, r.StatusCode, path)
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode, "nothing was signed out")
	for _, path := range []string{"/auth/session", "/auth/sessions"} {
		e.do(req{path: path, cookie: session, hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode, "GET changes nothing")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{method: http.MethodDelete, path: "/auth/session"}).StatusCode)
}

func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.IdleTimeout, c.Lifetime = 30*time.Minute, 2*time.Hour })
		token := e.fake.Issue("zoe", 24*time.Hour)
		session := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: token}).sessionCookie().Value

		// Active every 20 minutes: the idle timeout slides...
		for range 5 {
			e.clock.Advance(20 * time.Minute)
			require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
		}
		// ...but nothing extends the absolute lifetime of 2 h.
		e.clock.Advance(20 * time.Minute)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "absolute lifetime")

		idle := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("zoe", 24*time.Hour)}).sessionCookie().Value
		e.clock.Advance(29 * time.Minute)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: idle}).StatusCode)
		e.clock.Advance(31 * time.Minute)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: idle}).StatusCode, "idle for 31 minutes")
	})
}

func TestKeepAliveWritesAreThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", func(c *middleware.Config) { c.IdleTimeout = 30 * time.Minute })
	_, session := e.signIn("abe")
	before := e.commandCalls()["set"]
	for range 50 {
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	}
	assert.Equal(t, before, e.commandCalls()["set"], "no write within the keep-alive interval")
	e.clock.Advance(61 * time.Second)
	advanced := e.clock.Now()
	for range 50 {
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	}
	assert.Equal(t, before+1, e.commandCalls()["set"], "one write per interval however many requests")
	s, ok := sessionOf(e, session)
	require.True(t, ok)
	assert.False(t, s.LastSeen.Before(advanced.Add(-time.Second)), "the activity after the advance was recorded")
}

func TestSignedOutSessionIsNotResurrected(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, held := e.signIn("bea")
		_, other := e.signIn("bea")
		done := make(chan int)
		go func() {
			r, _ := e.try(req{method: http.MethodPost, path: "/api/hold", header: held})
			done <- r.StatusCode
		}()
		<-e.entered // the request is inside its handler, session loaded
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", header: other}).StatusCode)
		close(e.release) // the handler now writes to the session and returns
		assert.Equal(t, http.StatusNoContent, <-done)

		_, found, err := e.sm.Store.Find(format.KeyOf(held))
		require.NoError(t, err)
		assert.False(t, found, "the in-flight request did not write the session back")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: held}).StatusCode)
	})
}

func TestIdleSessionOfAValidTokenIsMintedAnew(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.IdleTimeout = 30 * time.Minute })
		token := e.fake.Issue("ida", 24*time.Hour)
		first := e.do(req{path: "/api/me", bearer: token})
		require.Equal(t, http.StatusOK, first.StatusCode)
		e.clock.Advance(31 * time.Minute)

		again := e.do(req{path: "/api/me", bearer: token})
		require.Equal(t, http.StatusOK, again.StatusCode, "an idle timeout is not a sign-out: %s", again.body)
		require.NotNil(t, again.sessionCookie())
		assert.NotEqual(t, first.sessionCookie().Value, again.sessionCookie().Value, "a fresh session")
		assert.EqualValues(t, 2, e.fake.Calls(), "validated again, since the old session is gone")
	})
}
