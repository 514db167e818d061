package middleware_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// fromHeader reads the client's address from X-Test-Client, so that one
// test server can play several addresses.
func fromHeader(c *middleware.Config) {
	c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
}

// A credential that works is never refused because its address has been
// failing: the guess limit only costs the failures.
func TestAWorkingCredentialIsNeverRefusedForItsAddress(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, fromHeader)
		nat := map[string]string{"X-Test-Client": "203.0.113.7"}
		frontend, live := e.signInFrom("ivy", nat)

		// A stale client on the same address keeps sending a dead token.
		dead := randomToken()
		limited := 0
		for range 40 {
			r := e.do(req{path: "/api/me", cookie: dead, hdr: nat})
			if r.StatusCode == http.StatusTooManyRequests {
				limited++
				c := r.sessionCookie()
				require.NotNil(t, c, "a 429 for a dead cookie clears it")
				assert.Empty(t, c.Value)
				assert.Less(t, c.MaxAge, 0)
			}
		}
		require.Equal(t, 20, limited, "the address is limited after GuessBurst failures")

		calls := e.fake.Calls()
		for name, q := range map[string]req{
			"live cookie":                    {path: "/api/me", cookie: live, hdr: nat},
			"live session header":            {path: "/api/me", header: live, hdr: nat},
			"bearer token of a live session": {path: "/api/me", bearer: frontend, hdr: nat},
			"live cookie and a dead one":     {path: "/api/me", cookie: dead, hdr: map[string]string{"X-Test-Client": nat["X-Test-Client"], "Cookie": cookieName + "=" + dead + "; " + cookieName + "=" + live}},
		} {
			r := e.do(q)
			assert.Equal(t, http.StatusOK, r.StatusCode, "%s: %s", name, r.body)
			if c := r.sessionCookie(); c != nil {
				assert.Equal(t, live, c.Value, "%s: the same session, handed to a bearer-only client", name)
			}
		}
		assert.Equal(t, calls, e.fake.Calls(), "no upstream call for existing sessions")

		r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("jon", time.Hour), hdr: nat})
		assert.Equal(t, http.StatusCreated, r.StatusCode, "a fresh valid sign-in from the address: %s", r.body)
		assert.Equal(t, calls+1, e.fake.Calls())
		assert.Equal(t, http.StatusTooManyRequests, e.do(req{path: "/api/me", cookie: randomToken(), hdr: nat}).StatusCode,
			"the dead token is still refused")
	})
}

// After the store lost every session (a Redis FLUSHALL), thirty browsers
// behind one NAT come back with dead cookies: each is cleared, 401 or
// 429, and a colleague's valid sign-in from the same address goes through.
func TestDeadCookiesBehindOneNATDoNotLockOutAColleague(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", fromHeader)
	nat := map[string]string{"X-Test-Client": "198.51.100.20"}
	var cookies []string
	for i := range 30 {
		_, s := e.signInFrom(fmt.Sprintf("browser%d", i), nat)
		cookies = append(cookies, s)
	}
	_, err := e.redis.Do("FLUSHALL")
	require.NoError(t, err)

	statuses := map[int]int{}
	for _, c := range cookies {
		r := e.do(req{path: "/api/me", cookie: c, hdr: nat})
		statuses[r.StatusCode]++
		cleared := r.sessionCookie()
		require.NotNil(t, cleared, "status %d: the dead cookie is cleared", r.StatusCode)
		assert.Empty(t, cleared.Value)
	}
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 20, http.StatusTooManyRequests: 10}, statuses)
	assert.Equal(t, "hello anonymous", e.do(req{path: "/public", hdr: nat}).body, "a cleared browser is served")

	calls := e.fake.Calls()
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("colleague", time.Hour), hdr: nat})
	assert.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	assert.Equal(t, calls+1, e.fake.Calls())
}

// A lockout is logged once, however many requests it refuses; the next
// lockout, after the client was forgiven, is logged again.
func TestALockoutIsLoggedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory", fromHeader)
	guesser := map[string]string{"X-Test-Client": "2001:db8:7:7::1"}
	lines := func() int { return strings.Count(e.logs.String(), "client rate limited") }
	refused := 0
	for range 200 {
		if e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser}).StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	require.Equal(t, 180, refused)
	assert.Equal(t, 1, lines(), "one line for the lockout, not one per 429")
	assert.Contains(t, e.logs.String(), "client=2001:db8:7:7::/64", "the limited key, an IPv6 /64")
	assert.EqualValues(t, 180, e.auth.Metrics().RateLimited, "every 429 is counted")

	e.clock.Advance(20 * 3 * time.Second) // the whole bucket back
	for range 30 {
		e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser})
	}
	assert.Equal(t, 2, lines(), "a new lockout")
}
