package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// stepUpServer replaces e's server by the example app's composition: the
// session routes, with DELETE /auth/sessions and /auth/sessions/others
// behind RequireRecentAuth(maxAge), and GET /api/sensitive behind it too.
func stepUpServer(e *env, maxAge time.Duration) {
	stepUp := e.auth.RequireRecentAuth(maxAge)
	routes := e.auth.Routes("/auth")
	r := chi.NewRouter()
	r.Use(e.auth.Handler)
	r.With(stepUp).Delete("/auth/sessions", routes.ServeHTTP)
	r.With(stepUp).Delete("/auth/sessions/others", routes.ServeHTTP)
	r.With(stepUp).Get("/api/sensitive", func(w http.ResponseWriter, r *http.Request) {
		u, _ := middleware.UserFrom(r.Context())
		w.Write([]byte(u.UserID))
	})
	r.With(e.auth.RequireSession).Get("/api/me", func(w http.ResponseWriter, r *http.Request) {
		u, _ := middleware.UserFrom(r.Context())
		w.Write([]byte(u.UserID))
	})
	r.Mount("/auth", routes)
	e.srv.Close()
	e.srv = httptest.NewTLSServer(r)
	e.t.Cleanup(e.srv.Close)
}

// challenge is a parsed WWW-Authenticate challenge (RFC 9110 §11.6.1):
// its scheme and its auth-params, quoted strings unquoted.
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenge parses one challenge strictly: a scheme, then
// comma-separated name=value pairs, each value a token or a quoted
// string; anything else fails the test.
func parseChallenge(t *testing.T, h string) challenge {
	t.Helper()
	scheme, rest, _ := strings.Cut(h, " ")
	c := challenge{scheme: scheme, params: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		require.True(t, ok, "no '=' in %q", rest)
		name = strings.TrimSpace(name)
		require.NotContains(t, c.params, name, "parameter %s twice", name)
		var value string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' {
					i++
				}
				require.Less(t, i, len(after), "unterminated quoted string in %q", h)
				b.WriteByte(after[i])
			}
			require.Less(t, i, len(after), "unterminated quoted string in %q", h)
			value, rest = b.String(), after[i+1:]
		} else {
			value, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
			if !strings.Contains(after, ",") {
				rest = ""
			}
			value = strings.TrimSpace(value)
			require.NotContains(t, value, " ", "a token value with a space in %q", h)
		}
		c.params[name] = value
		rest = strings.TrimSpace(rest)
		if rest != "" {
			require.True(t, strings.HasPrefix(rest, ","), "parameters not separated by a comma in %q", h)
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return c
}

// requireStepUp asserts r is RFC 9470's challenge with max_age maxAge.
func requireStepUp(t *testing.T, r resp, maxAge int) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, r.StatusCode, r.body)
	c := parseChallenge(t, r.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "Bearer", c.scheme)
	assert.Equal(t, "insufficient_user_authentication", c.params["error"])
	assert.NotEmpty(t, c.params["error_description"])
	assert.Equal(t, strconv.Itoa(maxAge), c.params["max_age"])
	assert.Len(t, c.params, 3, "error, error_description, max_age: %v", c.params)
	assert.Equal(t, "insufficient_user_authentication", r.json(t)["error"])
	assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
}

func TestRequireRecentAuthChallengesAStaleSessionAndAFreshTokenContinuesIt(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		stepUpServer(e, 10*time.Minute)
		_, mine := e.signIn("uma")
		_, other := e.signIn("uma")
		before := e.do(req{path: "/auth/session", cookie: mine}).json(t)["session"].(map[string]any)

		// Fresh: the sensitive route runs.
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/sensitive", cookie: mine}).StatusCode)
		// No session: what RequireSession answers.
		r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others"})
		require.Equal(t, http.StatusUnauthorized, r.StatusCode)
		assert.Equal(t, "Bearer", r.Header.Get("WWW-Authenticate"))

		e.clock.Advance(10*time.Minute + time.Second)
		r = e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: mine})
		requireStepUp(t, r, 600)
		requireStepUp(t, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: mine}), 600)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: other}).StatusCode, "the challenge ended nothing")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: mine}).StatusCode, "the session itself is fine")

		// The retry with a fresh token of the same user.
		calls := e.fake.Calls()
		fresh := e.fake.Issue("uma", time.Hour)
		r = e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: mine, bearer: fresh})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.JSONEq(t, `{"signedOut": 1}`, r.body)
		assert.Equal(t, calls+1, e.fake.Calls(), "one validation")
		c := r.sessionCookie()
		require.NotNil(t, c, "the continued session's token is handed out")
		assert.NotEqual(t, mine, c.Value)
		assert.Equal(t, c.Value, r.Header.Get("X-Session-Token"))

		after := e.do(req{path: "/auth/session", cookie: c.Value}).json(t)["session"].(map[string]any)
		assert.Equal(t, before["id"], after["id"], "the same session: the same public id")
		assert.Equal(t, before["created"], after["created"], "created at the device's first sign-in")
		authTime, err := time.Parse(time.RFC3339Nano, after["authTime"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, e.clock.Now(), authTime, time.Minute, "authenticated just now")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/sensitive", cookie: c.Value}).StatusCode, "and fresh")

		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: mine}).StatusCode, "the old session token is ended")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: other}).StatusCode, "the other device is signed out")
		list := e.do(req{path: "/auth/sessions", cookie: c.Value}).json(t)["sessions"].([]any)
		require.Len(t, list, 1, "left in the store: the continued session alone")
		assert.Equal(t, before["id"], list[0].(map[string]any)["id"])
	})
}

func TestRequireRecentAuthAnotherUsersTokenIsANewSignIn(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		stepUpServer(e, time.Minute)
		_, uma := e.signIn("uma")
		_, umaOther := e.signIn("uma")
		e.clock.Advance(2 * time.Minute)
		requireStepUp(t, e.do(req{path: "/api/sensitive", cookie: uma}), 60)

		r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: uma, bearer: e.fake.Issue("vic", time.Hour)})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.JSONEq(t, `{"signedOut": 0}`, r.body, "the route ran for vic, who has no other session")
		assert.Equal(t, "vic", e.do(req{path: "/api/me", cookie: r.sessionCookie().Value}).body)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: uma}).StatusCode, "uma's session on this device was replaced")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: umaOther}).StatusCode, "uma's other device is untouched")
	})
}

// A provider that reads auth_time (here OIDC through jwks): the session's
// authentication time is the token's, not the exchange's, and a refreshed
// token with the old auth_time does not renew it.
func TestRequireRecentAuthBelievesAuthTime(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		iss := providertest.NewIssuer()
		t.Cleanup(iss.Close)
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.Provider = jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{"api"}, JWKSURL: iss.JWKSURL, Timeout: testProviderTimeout})
		})
		stepUpServer(e, 5*time.Minute)
		longAgo := time.Now().Add(-time.Hour).Unix()

		r := e.do(req{path: "/api/sensitive", bearer: iss.Token("ada", "api", time.Hour, map[string]any{"auth_time": longAgo})})
		requireStepUp(t, r, 300)
		session := r.sessionCookie().Value
		refreshed := iss.Token("ada", "api", 2*time.Hour, map[string]any{"auth_time": longAgo})
		r = e.do(req{path: "/api/sensitive", cookie: session, bearer: refreshed})
		requireStepUp(t, r, 300)
		session = r.sessionCookie().Value

		r = e.do(req{path: "/api/sensitive", cookie: session, bearer: iss.Token("ada", "api", time.Hour, map[string]any{"auth_time": time.Now().Unix()})})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.Equal(t, "ada", r.body)
		list, err := e.auth.Sessions(t.Context(), jwks.DefaultName, "ada")
		require.NoError(t, err)
		require.Len(t, list, 1, "one device, continued twice")
		assert.WithinDuration(t, time.Now(), list[0].AuthTime, time.Minute)
	})
}

func TestRequireRecentAuthPanicsWithoutAPositiveMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	// Under a second, max_age (whole seconds) could only announce more
	// than the route allows: a client that honours it would be refused.
	for _, d := range []time.Duration{0, -time.Second, 500 * time.Millisecond, time.Second - 1} {
		assert.PanicsWithValue(t, "sessiongate/middleware: RequireRecentAuth needs a maxAge of at least one second (RFC 9470's max_age is whole seconds)",
			func() { e.auth.RequireRecentAuth(d) }, "%v", d)
	}
	assert.NotPanics(t, func() { e.auth.RequireRecentAuth(time.Second) })
	// max_age is whole seconds, rounded down.
	stepUpServer(e, 1500*time.Millisecond)
	_, s := e.signIn("uma")
	e.clock.Advance(2 * time.Second)
	requireStepUp(t, e.do(req{path: "/api/sensitive", cookie: s}), 1)
}
