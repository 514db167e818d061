package middleware_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// setCookies returns the Set-Cookie headers r carries for name.
func setCookies(r resp, name string) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// A stale tab's cookie, a cookie a sibling subdomain planted, or junk,
// sent next to the live session cookie, neither hides it nor gets it
// deleted.
func TestDeadCookiesNeverHideALiveSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, live := e.signIn("ada")
		_, ended := e.signIn("ada")
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: ended}).StatusCode)
		random := randomToken()
		junk := strings.Repeat("!", 43)
		ck := func(v string) string { return cookieName + "=" + v }

		for _, tc := range []struct {
			name string
			hdr  http.Header
		}{
			{"dead cookie first", http.Header{"Cookie": {ck(random) + "; " + ck(live)}}},
			{"ended session's cookie first", http.Header{"Cookie": {ck(ended) + "; " + ck(live)}}},
			{"dead cookie in an earlier Cookie header", http.Header{"Cookie": {ck(random), ck(live)}}},
			{"junk cookie first", http.Header{"Cookie": {ck(junk) + "; " + ck(live)}}},
			{"three dead cookies first", http.Header{"Cookie": {ck(randomToken()) + "; " + ck(randomToken()) + "; " + ck(ended) + "; " + ck(live)}}},
			{"live cookie first", http.Header{"Cookie": {ck(live) + "; " + ck(random)}}},
			{"dead session header, live cookie", http.Header{"X-Session-Token": {random}, "Cookie": {ck(live)}}},
			{"junk session header, live cookie", http.Header{"X-Session-Token": {"junk"}, "Cookie": {ck(live)}}},
			{"live session header, dead cookie", http.Header{"X-Session-Token": {live}, "Cookie": {ck(random)}}},
			{"dead then live session header", http.Header{"X-Session-Token": {random, live}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := e.tryHeader(req{path: "/api/me"}, tc.hdr)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, r.StatusCode, r.body)
				assert.Contains(t, r.body, `"id":"ada"`)
				assert.Empty(t, setCookies(r, cookieName), "no Set-Cookie that could delete the live cookie")
			})
		}
	})
}

// The session cookie is cleared only when that cannot delete a live one:
// when every cookie of its name was tried and none opened a session.
func TestDeadCookiesAreClearedOnlyWhenAllWereTried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, live := e.signIn("bea")
	ck := func(v string) string { return cookieName + "=" + v }
	dead := func(n int) []string {
		var out []string
		for range n {
			out = append(out, ck(randomToken()))
		}
		return out
	}

	for _, tc := range []struct {
		name    string
		cookies []string
		cleared bool
	}{
		{"one dead cookie", dead(1), true},
		{"two dead cookies", dead(2), true},
		{"dead and junk", append(dead(1), ck("junk")), true},
		{"junk alone is left alone", []string{ck("junk")}, false},
		{"a fifth cookie is never tried, and may be live", append(dead(4), ck(live)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.tryHeader(req{path: "/api/me"}, http.Header{"Cookie": {strings.Join(tc.cookies, "; ")}})
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
			cs := setCookies(r, cookieName)
			if !tc.cleared {
				assert.Empty(t, cs)
				return
			}
			require.Len(t, cs, 1)
			assert.Empty(t, cs[0].Value)
			assert.Less(t, cs[0].MaxAge, 0)
		})
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: live}).StatusCode, "the live session survived")
}

// The frontend token's cookie follows the same rule: junk does not hide a
// good token, and a stale tab's older token does not replace the session
// the newer one made.
func TestTokenCookiesNeverHideALiveToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory", func(c *middleware.Config) { c.TokenCookie = "__Host-idp" })
	good := e.fake.Issue("cleo", time.Hour)
	r, err := e.tryHeader(req{path: "/api/me"}, http.Header{"Cookie": {"__Host-idp=junk!; __Host-idp=" + good}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	session := r.sessionCookie()
	require.NotNil(t, session)

	old := e.fake.Issue("cleo", time.Hour)
	e.fake.Revoke(old)
	calls := e.fake.Calls()
	r, err = e.tryHeader(req{path: "/api/me"}, http.Header{"Cookie": {"__Host-idp=" + old + "; __Host-idp=" + good + "; " + cookieName + "=" + session.Value}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.StatusCode, r.body)
	assert.Empty(t, setCookies(r, cookieName), "the session is reused, not replaced")
	assert.Equal(t, calls, e.fake.Calls(), "and the stale token never reaches the provider")
}

// The default cookie carries the __Host- prefix whenever browsers allow
// it, so a sibling subdomain cannot plant a session cookie; plain http in
// development keeps a plain name.
func TestDefaultCookieName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mod    func(*middleware.Config)
		cookie string
		secure bool
	}{
		{"secure", func(*middleware.Config) {}, "__Host-session", true},
		{"insecure cookie", func(c *middleware.Config) { c.InsecureCookie = true }, "session", false},
		{"with a domain", func(c *middleware.Config) { c.Cookie.Domain = "example.com" }, "__Secure-session", true},
		{"on a path", func(c *middleware.Config) { c.Cookie.Path = "/app" }, "__Secure-session", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "memory", tc.mod)
			r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("dora", time.Hour)})
			require.Equal(t, http.StatusCreated, r.StatusCode)
			cs := r.Cookies()
			require.Len(t, cs, 1)
			assert.Equal(t, tc.cookie, cs[0].Name)
			assert.Equal(t, tc.secure, cs[0].Secure)
			if tc.cookie == "__Secure-session" {
				return // the test client sends no cookie to example.com or /app
			}
			r, err := e.tryHeader(req{path: "/api/me"}, http.Header{"Cookie": {tc.cookie + "=" + cs[0].Value}})
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.StatusCode, "read back under that name")
		})
	}
}

// New refuses a cookie that browsers would drop, with a message that
// says why.
func TestNewRefusesCookiesBrowsersDrop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mod    func(*middleware.Config)
		panics bool
	}{
		{"__Secure- without Secure", func(c *middleware.Config) { c.Cookie.Name = "__Secure-sid"; c.InsecureCookie = true }, true},
		{"__secure- in lower case", func(c *middleware.Config) { c.Cookie.Name = "__secure-sid"; c.InsecureCookie = true }, true},
		{"__HOST- in upper case on a path", func(c *middleware.Config) { c.Cookie.Name = "__HOST-sid"; c.Cookie.Path = "/app" }, true},
		{"SameSite=None without Secure", func(c *middleware.Config) {
			c.Cookie.SameSite = http.SameSiteNoneMode
			c.InsecureCookie = true
		}, true},
		{"SameSite=None, Secure", func(c *middleware.Config) { c.Cookie.SameSite = http.SameSiteNoneMode }, false},
		{"__Secure- with a domain", func(c *middleware.Config) {
			c.Cookie.Name = "__Secure-sid"
			c.Cookie.Domain = "example.com"
		}, false},
		{"a plain name without Secure", func(c *middleware.Config) { c.Cookie.Name = "sid"; c.InsecureCookie = true }, false},
		{"a name with a space", func(c *middleware.Config) { c.Cookie.Name = "my session" }, true},
		{"a name with a separator", func(c *middleware.Config) { c.Cookie.Name = "sid;x" }, true},
		{"a name with an equals sign", func(c *middleware.Config) { c.Cookie.Name = "sid=x" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			build := func() { newEnv(t, "memory", tc.mod) }
			if !tc.panics {
				assert.NotPanics(t, build)
				return
			}
			assert.True(t, strings.HasPrefix(panicMessage(t, build), "sessiongate/middleware: "))
		})
	}
}

// panicMessage returns what fn panics with, as a string.
func panicMessage(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		v := recover()
		require.NotNil(t, v, "no panic")
		msg, _ = v.(string)
	}()
	fn()
	return ""
}

// Signing out clears the cookie only when the cookie the browser holds can
// only be the session that ended.
func TestSignOutClearsOnlyTheEndedSessionsCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	del := func(hdr http.Header, bearer string) resp {
		t.Helper()
		r, err := e.tryHeader(req{method: http.MethodDelete, path: "/auth/session", bearer: bearer}, hdr)
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
		assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
		assert.Empty(t, r.Header.Get("X-Session-Token"), "no token of an ended session is handed out")
		return r
	}
	cleared := func(r resp) bool {
		cs := setCookies(r, cookieName)
		return len(cs) > 0 && cs[len(cs)-1].Value == "" && cs[len(cs)-1].MaxAge < 0
	}

	_, s1 := e.signIn("kai")
	_, s2 := e.signIn("kai")
	r := del(http.Header{"X-Session-Token": {s1}, "Cookie": {cookieName + "=" + s2}}, "")
	assert.Empty(t, setCookies(r, cookieName), "the cookie holds another live session")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s2}).StatusCode)

	_, s3 := e.signIn("kai")
	assert.Empty(t, setCookies(del(http.Header{"X-Session-Token": {s3}}, ""), cookieName), "a header client has no cookie to clear")

	assert.True(t, cleared(del(http.Header{"Cookie": {cookieName + "=" + s2}}, "")), "the cookie was the ended session's")

	frontend := e.fake.Issue("kai", time.Hour)
	assert.True(t, cleared(del(nil, frontend)), "the cookie this response set is taken back")
}
