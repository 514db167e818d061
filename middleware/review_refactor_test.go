package middleware_test

// Found by review after the engine moved out of middleware (issue 13):
// each test states what the documentation promises, and each failed
// before its fix.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// onSession runs fn in a handler behind e's middleware for a request
// carrying session (header), or none when session is "".
func onSession(e *env, session string, fn func(r *http.Request)) int {
	h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	hdr := map[string]string{}
	if session != "" {
		hdr["X-Session-Token"] = session
	}
	return httptestRecorder(h, http.MethodGet, "/x", hdr).Code
}

// scs's MergeSession with another session's token returns
// store.ErrUnsupported and changes nothing: no session gains another's
// values.
func TestMergeSessionChangesNothing(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, mine := e.signIn("dan")
		_, theirs := e.signIn("erin")
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodPost, path: "/api/note?v=erins-secret", header: theirs}).StatusCode)

		var merr error
		onSession(e, mine, func(r *http.Request) { merr = e.sm.MergeSession(r.Context(), theirs) })
		assert.ErrorIs(t, merr, store.ErrUnsupported)
		got := e.do(req{path: "/api/note", header: mine})
		assert.Equal(t, "", got.body, "MergeSession failed, so dan's session must not have gained erin's values")
	})
}

// MergeSession returns store.ErrUnsupported for any token but the
// request's own, one that opens nothing included.
func TestMergeSessionUnknownTokenIsUnsupported(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, mine := e.signIn("dan")
		for _, tok := range []string{"junk", deadSessionToken(), ""} {
			var merr error
			onSession(e, mine, func(r *http.Request) { merr = e.sm.MergeSession(r.Context(), tok) })
			assert.ErrorIs(t, merr, store.ErrUnsupported, "MergeSession(%q)", tok)
		}
	})
}

// Printing a Config, an Auth or a Revoker never shows a secret, a token,
// a store key or the Redis URL's password.
func TestPrintingNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	const password = "hunter2-redis-password"
	pool, err := redisstore.NewPool(strings.Replace(srv.URL, "redis://", "redis://default:"+password+"@", 1))
	require.NoError(t, err)
	t.Cleanup(func() { pool.Close() })
	const secret = "printed-session-secret-0123456789"
	const clientSecret = "printed-client-secret-abcdef"
	for _, st := range []store.Store{store.NewMemory(), redisstore.New(pool, redisstore.Options{})} {
		cfg := middleware.Config{
			Store:    st,
			Provider: plurality.New(plurality.Config{ClientID: "cid", ClientSecret: provider.Secret(clientSecret)}),
			Secret:   secret,
		}
		auth := middleware.New(cfg)
		rev := middleware.NewRevoker(cfg)
		for _, v := range []any{cfg, &cfg, auth, rev, *rev, cfg.Provider, st} {
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "v", v)
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "slog"} {
				out := logged.String()
				if verb != "slog" {
					out = fmt.Sprintf(verb, v)
				}
				assert.NotContains(t, out, secret, "%s of a %T", verb, v)
				assert.NotContains(t, out, clientSecret, "%s of a %T", verb, v)
				assert.NotContains(t, out, password, "%s of a %T", verb, v)
			}
		}
	}
}

// A Revoker signs out every spelling of each credential it revokes (an
// ES256 token's malleated twin is refused afterwards) when it has the
// middleware's secret. Built with another secret (a deployment mistake),
// it would write the credential marks where the middleware never reads
// them: it returns store.ErrSecretMismatch and ends nothing.
func TestRevokerWithTheWrongSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{testSecret, "not-the-middlewares-secret-0123"} {
		right := secret == testSecret
		t.Run(fmt.Sprintf("right-secret=%v", right), func(t *testing.T) {
			t.Parallel()
			stores(t, func(t *testing.T, kind string) {
				e, iss := newJWKSEnv(t, kind)
				require.NoError(t, e.auth.Check(context.Background()))
				iss.Keys.Rotate("ES256")
				es := iss.Token("ann", "api", time.Hour, nil)
				r := e.exchange(es)
				require.Equal(t, http.StatusCreated, r.StatusCode, r.body)

				job := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: provider.Secret(secret), Now: e.clock.Now})
				n, err := job.RevokeUser(context.Background(), "oidc", "ann")
				if !right {
					assert.ErrorIs(t, err, store.ErrSecretMismatch, "the store holds another secret's fingerprint")
					assert.Zero(t, n)
					assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: r.sessionCookie().Value}).StatusCode, "nothing ended")
					return
				}
				require.NoError(t, err)
				if err == nil {
					assert.Equal(t, 1, n)
					again := e.do(req{path: "/api/me", bearer: providertest.NegateES256(es)})
					assert.Equal(t, http.StatusUnauthorized, again.StatusCode,
						"RevokeUser reported success, yet the revoked credential's other spelling signs in: %s", again.body)
				}
			})
		})
	}
}

// panicAtStore is a memory store whose named method panics.
type panicAtStore struct {
	store.Store
	what string
}

func (p *panicAtStore) Mint(ctx context.Context, s backend.NewSession) error {
	if p.what == "mint" {
		panic("store bug in Mint for " + s.Token)
	}
	return p.Store.Mint(ctx, s)
}

func (p *panicAtStore) End(ctx context.Context, ends ...backend.Ending) error {
	if p.what == "end" {
		panic("store bug in End")
	}
	return p.Store.End(ctx, ends...)
}

func (p *panicAtStore) List(ctx context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	if p.what == "list" {
		panic("store bug in List")
	}
	return p.Store.List(ctx, user, after, limit)
}

func (p *panicAtStore) Check(ctx context.Context, fp []byte, claim bool) error {
	if p.what == "check" {
		panic("store bug in Check")
	}
	return p.Store.Check(ctx, fp, claim)
}

// A panic in any store method fails that request alone with 503
// session_store_unavailable, never a 500 or a dropped connection.
func TestPanickingStoreEverywhere(t *testing.T) {
	t.Parallel()
	for _, what := range []string{"mint", "end", "list", "check"} {
		t.Run(what, func(t *testing.T) {
			t.Parallel()
			p := &panicAtStore{Store: store.NewMemory()}
			e := newEnv(t, "memory", func(c *middleware.Config) { c.Store = p })
			_, s := e.signIn("pia")
			p.what = what
			var qs []req
			switch what {
			case "mint":
				qs = []req{{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("pia", time.Hour)}}
			case "end":
				qs = []req{{method: http.MethodDelete, path: "/auth/session", cookie: s}, {method: http.MethodDelete, path: "/auth/sessions", cookie: s}}
			case "list":
				qs = []req{{path: "/auth/sessions", cookie: s}, {method: http.MethodDelete, path: "/auth/sessions/others", cookie: s}}
			case "check":
				func() {
					defer func() {
						if v := recover(); v != nil {
							t.Errorf("Auth.Check let the store's panic escape: %v", v)
						}
					}()
					err := e.auth.Check(context.Background())
					assert.ErrorIs(t, err, store.ErrUnavailable)
				}()
			}
			for _, q := range qs {
				r, err := e.try(q)
				require.NoError(t, err, "%s %s: the connection was dropped", q.method, q.path)
				assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, "%s %s: %s", q.method, q.path, r.body)
			}
			assert.NotContains(t, e.logs.String(), "store bug", "a panic's own message is not logged")
			assert.Equal(t, http.StatusOK, e.do(req{path: "/public"}).StatusCode)
		})
	}
}

// A session answers for the tokens it continued only until each expires:
// an expired old token sent with the session that continued it is 401
// invalid_token, as it is alone.
func TestAnExpiredContinuedTokenIsNotThatSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		old := e.fake.Issue("una", time.Minute)
		r := e.exchange(old)
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		r = e.do(req{path: "/api/me", bearer: e.fake.Issue("una", 2*time.Hour), cookie: r.sessionCookie().Value})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		next := r.sessionCookie()
		require.NotNil(t, next, "continued")
		e.clock.Advance(10 * time.Minute) // old has expired, leeway included
		alone := e.do(req{path: "/api/me", bearer: old})
		require.Equal(t, http.StatusUnauthorized, alone.StatusCode, alone.body)
		with := e.do(req{path: "/api/me", bearer: old, cookie: next.Value})
		assert.Equal(t, http.StatusUnauthorized, with.StatusCode, "an expired token, sent with the session that continued it: %s", with.body)
	})
}

// deadSessionToken is a well-formed session token that opens nothing.
func deadSessionToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
