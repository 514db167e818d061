package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// paraEnv configures the app for a fake Para.
func paraEnv(fake *providertest.Para, providerName string) map[string]string {
	return map[string]string{
		"PROVIDER":            providerName,
		"PARA_API_URL":        fake.URL,
		"PARA_SECRET_API_KEY": fake.SecretAPIKey,
		"PARA_JWT_AUDIENCE":   fake.APIKeyID,
		"SESSION_SECRET":      "a-secret-shared-by-all-processes",
	}
}

type listed struct {
	Sessions []struct {
		ID       string
		UserID   string
		Provider string
		Expires  time.Time
		Current  bool
	}
}

// TestProcessWithPara runs the binary with PROVIDER=para and
// PROVIDER=parajwt against a Para-format upstream on loopback: tokens are
// validated once, sessions list with provider "para", and management works.
func TestProcessWithPara(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"para", "parajwt"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewPara()
			defer fake.Close()
			env := paraEnv(fake, mode)
			env["SESSION_STORE"] = "redis"
			env["REDIS_URL"] = storetest.Start(t).URL
			app := startApp(t, env)

			user := fake.User(providertest.ParaUser{Identifier: "ada@example.com", OAuthMethod: "google"})
			issue := func(ttl time.Duration) string {
				if mode == "para" {
					return fake.VerificationToken(user, ttl)
				}
				return fake.JWT(user, ttl)
			}
			wantID := "email:ada@example.com"
			if mode == "parajwt" {
				wantID = user.ID
			}
			upstreamCalls := func() int64 { return fake.VerifyCalls() + fake.Keys.Calls() }

			// Two devices sign in; each token is validated once. (Two Para
			// JWTs for one user issued in the same second with the same
			// lifetime are the same token: give them different lifetimes.)
			issued := time.Now() // the JWTs' exp is issue time (in whole seconds) plus lifetime
			first := app.do(call{method: "POST", path: "/auth/session", bearer: issue(30 * time.Minute)})
			require.Equal(t, http.StatusCreated, first.status, first.body)
			second := app.do(call{method: "POST", path: "/auth/session", bearer: issue(30*time.Minute - 2*time.Second)})
			require.Equal(t, http.StatusCreated, second.status, second.body)
			issuedBy := time.Now()
			for range 10 {
				me := app.do(call{path: "/api/me", cookie: first.session})
				require.Equal(t, http.StatusOK, me.status)
				assert.JSONEq(t, `{"user":{"id":"`+wantID+`","provider":"para"}}`, me.body)
			}
			if mode == "para" {
				assert.EqualValues(t, 2, fake.VerifyCalls(), "one verify call per verification token")
				assert.Zero(t, fake.Keys.Calls())
			} else {
				assert.EqualValues(t, 1, fake.Keys.Calls(), "one key-set fetch for every JWT")
				assert.Zero(t, fake.VerifyCalls(), "JWTs are verified locally")
			}
			calls := upstreamCalls()

			// The session-management routes list both, with the right provider.
			list := app.do(call{path: "/auth/sessions", cookie: first.session})
			require.Equal(t, http.StatusOK, list.status)
			var l listed
			require.NoError(t, json.Unmarshal([]byte(list.body), &l))
			require.Len(t, l.Sessions, 2)
			for _, s := range l.Sessions {
				assert.Equal(t, "para", s.Provider)
				assert.Equal(t, wantID, s.UserID)
				if mode == "parajwt" {
					lee := provider.DefaultLeeway
					assert.False(t, s.Expires.After(issuedBy.Add(30*time.Minute+lee)), "a session never outlives its Para JWT (and the one leeway)")
					assert.False(t, s.Expires.Before(issued.Truncate(time.Second).Add(30*time.Minute+lee-2*time.Second)), "and lives as long as it")
				}
			}
			others := app.do(call{method: "DELETE", path: "/auth/sessions/others", cookie: first.session})
			require.Equal(t, http.StatusOK, others.status)
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", cookie: second.session}).status)
			assert.Equal(t, http.StatusOK, app.do(call{path: "/api/me", cookie: first.session}).status)
			assert.Equal(t, calls, upstreamCalls(), "management makes no upstream call")

			// Expired tokens are 401; Para down is 503 for a token not yet seen.
			assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: issue(-time.Hour)}).status)
			fresh := issue(time.Hour)
			if mode == "parajwt" {
				// A key the cache lacks, while the key set is down.
				fake.Keys.Rotate("ES256")
				fresh = issue(time.Hour)
			}
			fake.SetFault(providertest.Fault{Status: http.StatusBadGateway})
			down := app.do(call{path: "/api/me", bearer: fresh})
			assert.Equal(t, http.StatusServiceUnavailable, down.status, down.body)
			assert.Contains(t, down.body, "provider_unavailable")
			assert.Equal(t, http.StatusOK, app.do(call{path: "/api/me", cookie: first.session}).status, "existing sessions do not need Para")
		})
	}
}

// TestProcessWithPluralityAndPara accepts Plurality tokens and Para JWTs
// in one app, each validated by its own upstream and recorded as such.
func TestProcessWithPluralityAndPara(t *testing.T) {
	t.Parallel()
	plur := providertest.NewPlurality()
	defer plur.Close()
	fake := providertest.NewPara()
	defer fake.Close()
	env := paraEnv(fake, "plurality,parajwt")
	for k, v := range pluralityEnv(plur) {
		if k != "PROVIDER" {
			env[k] = v
		}
	}
	app := startApp(t, env)

	p := app.do(call{path: "/api/me", bearer: plur.Issue("alice", time.Hour)})
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.JSONEq(t, `{"user":{"id":"alice","provider":"plurality"}}`, p.body)

	user := fake.User(providertest.ParaUser{AuthType: "phone", Identifier: "+13105551234"})
	q := app.do(call{path: "/api/me", bearer: fake.JWT(user, time.Hour)})
	require.Equal(t, http.StatusOK, q.status, q.body)
	assert.JSONEq(t, `{"user":{"id":"`+user.ID+`","provider":"para"}}`, q.body)

	assert.EqualValues(t, 1, plur.Calls(), "the Plurality token went to Plurality only")
	assert.EqualValues(t, 1, fake.Keys.Calls())
	assert.Zero(t, fake.VerifyCalls())

	assert.Equal(t, http.StatusUnauthorized, app.do(call{path: "/api/me", bearer: "opaque-token-nobody-claims"}).status)
	assert.EqualValues(t, 1, plur.Calls())
}
