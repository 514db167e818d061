package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// TestProcessOnSentinel: the app, with REDIS_URL naming a real Sentinel
// set, runs the whole flow (wholeFlow).
func TestProcessOnSentinel(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{MinReplicasToWrite: 1})
	wholeFlow(t, set.URL(), 5)
}

// wholeFlow runs chi-app on the Redis deployment redisURL names, with a
// fake Plurality, through the whole flow: sign in (bearer and cookie),
// bearer-only reuse, list, revoke one, sign out others / this / all, a
// backend job's RevokeUser, and every signed-out token and cookie stays
// out without an upstream call. One user signs in n times (n >= 3) for
// it. It returns the app's environment and the session token of every
// sign-in.
func wholeFlow(t *testing.T, redisURL string, n int) (env map[string]string, sessions []string) {
	t.Helper()
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	env = pluralityEnv(fake)
	env["SESSION_STORE"] = "redis"
	env["REDIS_URL"] = redisURL
	app := startApp(t, env)

	signIn := func(user string) (token, session string) {
		token = fake.Issue(user, time.Hour)
		ex := app.do(call{method: "POST", path: "/auth/session", bearer: token})
		require.Equal(t, http.StatusCreated, ex.status, ex.body)
		require.NotEmpty(t, ex.session)
		sessions = append(sessions, ex.session)
		return token, ex.session
	}
	list := func(session string) []middleware.Session { return app.sessions(session) }
	me := func(c call) int { c.path = "/api/me"; return app.do(c).status }

	// Sign in, then the cookie alone, then the frontend token alone: one
	// upstream call.
	tokens, own := make([]string, n), make([]string, n)
	tokens[0], own[0] = signIn("uma")
	assert.Equal(t, http.StatusOK, me(call{cookie: own[0]}))
	bearerOnly := app.do(call{path: "/api/me", bearer: tokens[0]})
	assert.Equal(t, http.StatusOK, bearerOnly.status)
	// A bearer-only client is not sent the session again; the explicit
	// exchange hands it out.
	again := app.do(call{method: "POST", path: "/auth/session", bearer: tokens[0]})
	assert.Equal(t, http.StatusOK, again.status)
	assert.Equal(t, own[0], again.session, "the bearer-only client finds the session minted from its token")
	assert.EqualValues(t, 1, fake.Calls())
	for i := 1; i < n; i++ {
		tokens[i], own[i] = signIn("uma")
	}
	listed := list(own[0])
	require.Len(t, listed, n)

	// Revoke one (not the caller's) by its public id.
	var victim string
	for _, s := range listed {
		if !s.Current {
			victim = s.ID
			break
		}
	}
	require.Equal(t, http.StatusNoContent, app.do(call{method: "DELETE", path: "/auth/sessions/" + victim, cookie: own[0]}).status)
	assert.Len(t, list(own[0]), n-1)

	// Sign out the others: only the caller's session is left.
	require.Equal(t, http.StatusOK, app.do(call{method: "DELETE", path: "/auth/sessions/others", cookie: own[0]}).status)
	for i := 1; i < n; i++ {
		assert.Equal(t, http.StatusUnauthorized, me(call{cookie: own[i]}), "session %d", i)
	}
	assert.Len(t, list(own[0]), 1)

	// Sign out this one.
	require.Equal(t, http.StatusNoContent, app.do(call{method: "DELETE", path: "/auth/session", cookie: own[0]}).status)
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: own[0]}))

	// Sign out all, from a new sign-in.
	t1, s1 := signIn("uma")
	_, s2 := signIn("uma")
	require.Equal(t, http.StatusNoContent, app.do(call{method: "DELETE", path: "/auth/sessions", cookie: s1}).status)
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: s1}))
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: s2}))

	// A backend job revokes a user, with the store and the secret alone.
	_, v1 := signIn("vic")
	_, v2 := signIn("vic")
	st, err := redisstore.Open(redisURL, redisstore.Options{})
	require.NoError(t, err)
	defer st.(io.Closer).Close()
	revoker := middleware.NewRevoker(middleware.Config{Store: st, Secret: provider.Secret(env["SESSION_SECRET"]),
		Logger: slog.New(slog.DiscardHandler)})
	revoked, err := revoker.RevokeUser(context.Background(), "plurality", "vic")
	require.NoError(t, err)
	assert.Equal(t, 2, revoked)
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: v1}))
	assert.Equal(t, http.StatusUnauthorized, me(call{cookie: v2}))

	// Logout means logout: every signed-out frontend token and cookie,
	// replayed, stays out, without asking the upstream.
	calls := fake.Calls()
	for i := range tokens {
		assert.Equal(t, http.StatusUnauthorized, me(call{bearer: tokens[i]}), "token %d", i)
		assert.Equal(t, http.StatusUnauthorized, me(call{cookie: own[i]}), "cookie %d", i)
	}
	assert.Equal(t, http.StatusUnauthorized, me(call{bearer: t1}))
	assert.Equal(t, calls, fake.Calls(), "no upstream call for a signed-out token")
	return env, sessions
}

// sessions returns GET /auth/sessions for the session cookie session.
func (p *process) sessions(session string) []middleware.Session {
	p.t.Helper()
	a := p.do(call{path: "/auth/sessions", cookie: session})
	require.Equal(p.t, http.StatusOK, a.status, a.body)
	var body struct{ Sessions []middleware.Session }
	require.NoError(p.t, json.Unmarshal([]byte(a.body), &body))
	return body.Sessions
}
