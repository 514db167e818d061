package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// spellings is a provider that, like a lenient upstream, accepts several
// spellings of one credential: a token "<user>-<n>.<anything>" is valid,
// and every spelling with the same "<user>-<n>" is the same credential
// (its TokenID). A token naming user "boom" panics, as a provider with a
// nil-map bug would.
type spellings struct {
	calls  atomic.Int64
	expiry time.Time
}

func (p *spellings) Name() string { return "spell" }

func (p *spellings) Validate(_ context.Context, token string) (*provider.Identity, error) {
	p.calls.Add(1)
	cred, _, _ := strings.Cut(token, ".")
	user, _, ok := strings.Cut(cred, "-")
	if !ok {
		return nil, &provider.InvalidTokenError{Provider: "spell", Reason: "not a test token"}
	}
	if user == "boom" {
		var m map[string]int
		m["boom"]++ // a nil map write: panics
	}
	return &provider.Identity{UserID: user, TokenID: cred, Expiry: p.expiry}, nil
}

func newSpellEnv(t *testing.T, kind string) (*env, *spellings) {
	p := &spellings{}
	return newEnv(t, kind, func(c *middleware.Config) { c.Provider = p }), p
}

func (e *env) exchange(bearer string) resp {
	e.t.Helper()
	return e.do(req{method: http.MethodPost, path: "/auth/session", bearer: bearer})
}

func TestEverySpellingOfASignedOutCredentialIsRefused(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, p := newSpellEnv(t, kind)
		a := e.exchange("alice-1.first")
		require.Equal(t, http.StatusCreated, a.StatusCode, a.body)

		b := e.exchange("alice-1.second")
		require.Equal(t, http.StatusCreated, b.StatusCode, "another spelling of a live credential: validated, and its session replaces the first")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: a.sessionCookie().Value}).StatusCode,
			"one session per credential: the first spelling's session ended")
		list := e.do(req{path: "/auth/sessions", cookie: b.sessionCookie().Value})
		assert.Len(t, list.json(t)["sessions"], 1, list.body)

		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: b.sessionCookie().Value}).StatusCode)
		calls := p.calls.Load()
		for _, spelling := range []string{"alice-1.first", "alice-1.second", "alice-1.third"} {
			r := e.do(req{path: "/api/me", bearer: spelling})
			assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "%s after sign-out: %s", spelling, r.body)
			assert.Nil(t, r.sessionCookie(), "no session for %s", spelling)
		}
		// The signed-out spelling is refused by its own key, with no upstream
		// call; the others are validated, then refused by the credential's
		// mark, and negative-cached.
		assert.Equal(t, calls+2, p.calls.Load())
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "alice-1.third"}).StatusCode)
		assert.Equal(t, calls+2, p.calls.Load(), "a refused spelling is not validated again")
		assert.Equal(t, http.StatusCreated, e.exchange("alice-2.first").StatusCode, "another credential of the same user signs in")

		// The same after a revocation of the user by a backend job.
		require.Equal(t, http.StatusCreated, e.exchange("bob-1.first").StatusCode)
		n, err := e.auth.RevokeUser(context.Background(), "spell", "bob")
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "bob-1.other"}).StatusCode, "RevokeUser marks every spelling")

		// And by a Revoker, which marks the credential with the
		// middleware's secret and no provider of its own.
		require.Equal(t, http.StatusCreated, e.exchange("carl-1.first").StatusCode)
		job := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret, Now: e.clock.Now})
		n, err = job.RevokeUser(context.Background(), "spell", "carl")
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "carl-1.other"}).StatusCode, "a Revoker marks every spelling")
	})
}

func TestHugeUpstreamExpiryCannotWrap(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, p := newSpellEnv(t, kind)
		p.expiry = time.Unix(1e16, 0) // "exp": 1e16, from a provider that does not range-check
		r := e.exchange("carol-1.x")
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value}).StatusCode)
		again := e.do(req{path: "/api/me", bearer: "carol-1.x"})
		assert.Equal(t, http.StatusUnauthorized, again.StatusCode, "the sign-out mark was not written already expired: %s", again.body)
		assert.Nil(t, again.sessionCookie())
	})
}

func TestPanickingProviderFailsOneRequest(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, _ := newSpellEnv(t, kind)
		for range 2 {
			r := e.exchange("boom-1.x")
			assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, r.body)
			assert.Contains(t, r.body, "provider_unavailable")
			assert.NotEmpty(t, r.Header.Get("Retry-After"))
		}
		assert.Equal(t, 2, strings.Count(e.logs.String(), "recovered from a panic"), "logged once per panic")
		assert.Contains(t, e.logs.String(), "goroutine", "with its stack")
		assert.Equal(t, http.StatusCreated, e.exchange("dave-1.x").StatusCode, "the process and other requests go on")
	})
}

func TestTwoTabsOneUserContinueOneSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		tokenA, sessionA := e.signIn("alice")
		tokenB := e.fake.Issue("alice", 2*time.Hour)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: sessionA}).StatusCode)
		first := e.do(req{path: "/auth/session", cookie: sessionA}).json(t)["session"].(map[string]any)

		// B with A's session: the same device, a fresh session token.
		rb := e.do(req{path: "/api/me", bearer: tokenB, cookie: sessionA})
		require.Equal(t, http.StatusOK, rb.StatusCode, rb.body)
		sessionB := rb.sessionCookie().Value
		assert.NotEqual(t, sessionA, sessionB, "a re-authentication always gets a fresh session token")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessionA}).StatusCode, "and the old one ends")
		second := e.do(req{path: "/auth/session", cookie: sessionB}).json(t)["session"].(map[string]any)
		assert.Equal(t, first["id"], second["id"], "same public id")
		assert.Equal(t, first["created"], second["created"], "same created time")
		assert.NotEqual(t, first["expires"], second["expires"], "its expiry follows the newer token")
		assert.Equal(t, "kept", e.do(req{path: "/api/note", cookie: sessionB}).body, "and its values")

		// A again with B's session: A was never signed out, and its session
		// moved to this device: the same session, with no upstream call.
		calls := e.fake.Calls()
		ra := e.do(req{path: "/api/me", bearer: tokenA, cookie: sessionB})
		require.Equal(t, http.StatusOK, ra.StatusCode, "replacing a session is not a sign-out: %s", ra.body)
		assert.Nil(t, ra.sessionCookie(), "the session the request carries is the token's")
		assert.Equal(t, calls, e.fake.Calls(), "validated once")
		sessionA2 := sessionB
		list := e.do(req{path: "/auth/sessions", cookie: sessionA2}).json(t)["sessions"].([]any)
		require.Len(t, list, 1, "one device")
		assert.Equal(t, first["id"], list[0].(map[string]any)["id"])

		// Another user on the same device gets a session of their own.
		rc := e.do(req{path: "/api/me", bearer: e.fake.Issue("bob", time.Hour), cookie: sessionA2})
		require.Equal(t, http.StatusOK, rc.StatusCode)
		bob := e.do(req{path: "/auth/session", cookie: rc.sessionCookie().Value}).json(t)["session"].(map[string]any)
		assert.NotEqual(t, first["id"], bob["id"])
		assert.Empty(t, e.do(req{path: "/api/note", cookie: rc.sessionCookie().Value}).body, "and none of alice's values")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessionA2}).StatusCode)
	})
}

func TestSignOutFinishesWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, one := e.signIn("erin")
		_, two := e.signIn("erin")
		var err error
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithCancel(r.Context())
			cancel() // the client is gone
			_, err = e.auth.SignOutAll(ctx)
		}))
		httptestRecorder(h, http.MethodDelete, "/auth/sessions", map[string]string{"X-Session-Token": one})
		require.NoError(t, err)
		for _, s := range []string{one, two} {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: s}).StatusCode, "both sessions ended")
		}
	})
}

func TestSignOutAllEndsTheCurrentSessionEvenWithoutItsIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	_, s := e.signIn("frank")
	_, err := e.redis.Do("DEL", "sg:u:plurality:frank")
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", header: s}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: s}).StatusCode)
}

func TestScsAPIDoesNotSeeSessiongatesRecord(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, s := e.signIn("gina")
		var keys []string
		var renew, destroy, iterate error
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			keys = e.sm.Keys(ctx)
			e.sm.Clear(ctx)
			e.sm.Put(ctx, "flash", "hello")
			renew = e.sm.RenewToken(ctx)
			destroy = e.sm.Destroy(ctx)
			iterate = e.sm.Iterate(ctx, func(context.Context) error { return nil })
		}))
		httptestRecorder(h, http.MethodGet, "/", map[string]string{"X-Session-Token": s})
		assert.Empty(t, keys, "the handler sees its own values only")
		assert.ErrorIs(t, renew, store.ErrUnsupported, "RenewToken fails loudly")
		assert.ErrorIs(t, destroy, store.ErrUnsupported, "Destroy fails loudly")
		assert.ErrorIs(t, iterate, store.ErrUnsupported, "Iterate fails with an error, not a panic")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: s}).StatusCode, "Clear did not sign the user out, nor did Destroy or RenewToken")
	})
}

// panickyStore is a memory store whose reads panic, as a store with a bug
// would.
type panickyStore struct{ store.Store }

func (panickyStore) Lookup(context.Context, string) (format.Stored, error) { panic("a store bug") }

func TestPanickingStoreFailsOneRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory", func(c *middleware.Config) {
		c.Store = panickyStore{store.NewMemory()}
	})
	for _, q := range []req{
		{path: "/api/me", header: strings.Repeat("A", 43)},
		{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("hal", time.Hour)},
	} {
		r := e.do(q)
		assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, r.body)
		assert.Contains(t, r.body, "session_store_unavailable")
	}
	assert.Equal(t, 2, strings.Count(e.logs.String(), "recovered from a panic"))
	assert.NotContains(t, e.logs.String(), "a store bug", "a panic's own message is not logged: it could hold a token")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/public"}).StatusCode)
}
