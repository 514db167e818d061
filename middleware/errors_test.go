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
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

func TestNoSessionOnAProtectedRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	r := e.do(req{path: "/api/me"})
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.Equal(t, "Bearer", r.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "unauthorized", r.json(t)["error"])
	assert.NotEmpty(t, r.json(t)["message"])
	assert.Equal(t, "hello anonymous", e.do(req{path: "/public"}).body, "public routes run without a session")
}

func TestRejectedTokenRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	r := e.do(req{path: "/public", bearer: "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImZvcmdlZCJ9.c2ln"})
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.Equal(t, `Bearer error="invalid_token"`, r.Header.Get("WWW-Authenticate"))
	assert.Equal(t, "invalid_token", r.json(t)["error"])
	assert.Nil(t, r.sessionCookie(), "nothing minted")
}

func TestProviderUnavailableRow(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		fault      providertest.Fault
		retryAfter string
	}{
		"down":         {providertest.Fault{Down: true}, "5"},
		"slow":         {providertest.Fault{Delay: time.Hour}, "5"}, // only the provider timeout ends it
		"5xx":          {providertest.Fault{Status: 500}, "5"},
		"429":          {providertest.Fault{Status: 429, RetryAfter: "7"}, "7"},
		"garbage":      {providertest.Fault{Body: []byte("<html>")}, "5"},
		"huge garbage": {providertest.Fault{Body: []byte(strings.Repeat("{", 3<<20))}, "5"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "memory")
			_, existing := e.signIn("olga")
			e.fake.SetFault(c.fault)
			e.impatient(time.Second)
			r := e.do(req{path: "/api/me", bearer: e.fake.Issue("olga", time.Hour)})
			assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
			assert.Equal(t, "provider_unavailable", r.json(t)["error"])
			assert.Equal(t, c.retryAfter, r.Header.Get("Retry-After"))
			assert.Nil(t, r.sessionCookie(), "no session is created")
			assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: existing}).StatusCode, "existing sessions keep working")
		})
	}
}

func TestSessionStoreUnavailableRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	_, session := e.signIn("paul")
	e.redis.Stop()

	r := e.do(req{path: "/api/me", cookie: session})
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, "never 200, never 401 for a session we could not read")
	assert.Equal(t, "session_store_unavailable", r.json(t)["error"])
	assert.Equal(t, "5", r.Header.Get("Retry-After"))

	r = e.do(req{path: "/api/me", bearer: e.fake.Issue("paul", time.Hour)})
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	assert.Equal(t, "session_store_unavailable", r.json(t)["error"])

	assert.Equal(t, "hello anonymous", e.do(req{path: "/public", cookie: session}).body, "public routes keep serving")

	e.redis.Restart()
	assert.Eventually(t, func() bool {
		return e.do(req{path: "/api/me", bearer: e.fake.Issue("paul", time.Hour)}).StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "recovers by itself")
}

func TestCrossOriginUnsafeRequestWithCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, session := e.signIn("quinn")
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site"}

	r := e.do(req{method: http.MethodPost, path: "/api/note?v=evil", cookie: session, hdr: crossSite})
	assert.Equal(t, http.StatusForbidden, r.StatusCode)
	assert.Equal(t, "cross_origin_request", r.json(t)["error"])
	assert.Equal(t, "", e.do(req{path: "/api/note", cookie: session}).body, "nothing changed")

	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session, hdr: crossSite}).StatusCode, "safe methods pass")
	assert.Equal(t, http.StatusNoContent,
		e.do(req{method: http.MethodPost, path: "/api/note?v=ok", header: session, hdr: crossSite}).StatusCode,
		"a session header cannot be forged cross-origin")
	assert.Equal(t, http.StatusNoContent,
		e.do(req{method: http.MethodPost, path: "/api/note?v=ok", cookie: session, hdr: map[string]string{"Sec-Fetch-Site": "same-origin"}}).StatusCode)
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	frontend, session := e.signIn("rita")
	e.do(req{path: "/api/me", cookie: session})
	e.do(req{path: "/api/me", bearer: frontend})
	rejected := e.fake.Issue("rita", time.Hour)
	e.fake.Revoke(rejected)
	e.do(req{path: "/api/me", bearer: rejected})
	e.fake.SetFault(providertest.Fault{Status: 503})
	other := e.fake.Issue("rita", time.Hour)
	e.do(req{path: "/api/me", bearer: other})
	e.fake.SetFault(providertest.Fault{})
	e.do(req{path: "/api/me", cookie: session, bearer: e.fake.Issue("sam", time.Hour)})

	logs := e.logs.String()
	require.Contains(t, logs, "session minted")
	require.Contains(t, logs, "session ended")
	require.Contains(t, logs, "token rejected")
	require.Contains(t, logs, "provider unavailable")
	for _, secret := range []string{frontend, session, rejected, other, testSecret, e.fake.ClientSecret} {
		assert.NotContains(t, logs, secret)
	}
}

func TestNewPanicsOnImpossibleConfig(t *testing.T) {
	t.Parallel()
	p := plurality.New(plurality.Config{ClientID: "id", ClientSecret: "s"})
	cases := map[string]middleware.Config{
		"no provider":  {Store: store.NewMemory()},
		"short secret": {Store: store.NewMemory(), Provider: p, Secret: "short"},
	}
	for name, cfg := range cases {
		assert.Panics(t, func() { middleware.New(cfg) }, name)
	}
	// The index separator: provider "a:b"'s user "c" and provider "a"'s
	// user "b:c" would share one user index.
	colon := introspect.New(introspect.Config{Name: "oidc:google", URL: "https://idp.example/introspect", ClientID: "id", ClientSecret: "s"})
	assert.PanicsWithValue(t, `sessiongate/middleware: Config.Provider's name "oidc:google" holds a ':', which separates it from user ids in the store`, func() {
		middleware.New(middleware.Config{Store: store.NewMemory(), Provider: colon, Secret: testSecret})
	})
	cfg := middleware.Config{Store: store.NewMemory(), Provider: p, Secret: testSecret}
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), testSecret)
}
