package middleware_test

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// rvlOverride overrides Lookup, Commit and Delete (counts them).
type rvlOverride struct {
	store.Store
	lookups, commits atomic.Int64
}

func (w *rvlOverride) Commit(token string, b []byte, exp time.Time) error {
	w.commits.Add(1)
	return w.Store.Commit(token, b, exp)
}

type rvlOuter struct{ store.Store }

func TestReviewLWrapperOfWrapperBehind(t *testing.T) {
	inner := &rvlOverride{Store: store.NewMemory()}
	e := rvfBehind(t, func(c *middleware.Config) {
		c.Store = rvlOuter{wrappedStore{inner}}
		c.Provider = rvfNoExpiry(c.Provider)
	})
	frontend, session := e.rvfSignIn("ww")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	r := e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	r = e.do(req{path: "/api/note", cookie: session})
	assert.Contains(t, r.body, "kept")
	assert.NotZero(t, inner.commits.Load())
	// A Revoker on the bare store, no Now: reads the store's (fake) clock.
	rv := middleware.NewRevoker(middleware.Config{Store: inner.Store, Secret: testSecret})
	list, err := rv.Sessions(context.Background(), "plurality", "ww")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	n, err := rv.RevokeUser(context.Background(), "plurality", "ww")
	require.NoError(t, err)
	t.Logf("revoked %d", n)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: frontend}).StatusCode)
}

// A bare memory store used by one middleware (Now far ahead), and wrapped by another
// (its own Now, not used: logged).
func TestReviewLBareAndWrappedShareOneClock(t *testing.T) {
	mem := store.NewMemory()
	a := newEnv(t, "memory", func(c *middleware.Config) {
		c.Store = mem
		c.Lifetime = time.Hour
		c.Provider = rvfNoExpiry(c.Provider)
	})
	a.clock.Advance(48 * time.Hour)
	b := newEnvSharing(t, "memory", a, func(c *middleware.Config) {
		c.Store = wrappedStore{mem}
		c.Lifetime = time.Hour
		c.Provider = rvfNoExpiry(c.Provider)
	})
	assert.Contains(t, b.logs.String(), "not used")
	_, session := a.rvfSignIn("shared")
	assert.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: session}).StatusCode)
	fr2 := b.fake.Issue("shared2", 4*time.Hour)
	r := b.do(req{method: http.MethodPost, path: "/auth/session", bearer: fr2})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	s2 := r.sessionCookie().Value
	assert.Equal(t, http.StatusOK, a.do(req{path: "/api/me", cookie: s2}).StatusCode)
	assert.Equal(t, http.StatusNoContent, b.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, a.do(req{path: "/api/me", cookie: session}).StatusCode)
}

func TestReviewLConcurrentNew(t *testing.T) {
	mem := store.NewMemory()
	var wg sync.WaitGroup
	base := time.Now().Add(-5 * time.Hour)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var s store.Store = mem
			if i%2 == 0 {
				s = wrappedStore{mem}
			}
			off := time.Duration(i) * time.Minute
			cfg := middleware.Config{Store: s, Secret: testSecret, Now: func() time.Time { return base.Add(off) },
				Logger: slog.New(slog.DiscardHandler)}
			if i%3 == 0 {
				middleware.NewRevoker(cfg)
			} else {
				cfg.Provider = nopProviderForL{}
				middleware.New(cfg)
			}
		}(i)
	}
	wg.Wait()
}

// Review L: an application's wrapper around a nil store panicked in New
// with a bare nil dereference; it now says what is wrong.
func TestReviewLNilWrapped(t *testing.T) {
	assert.PanicsWithValue(t, "sessiongate: Config.Store wraps a nil store", func() {
		middleware.New(middleware.Config{Store: wrappedStore{}, Secret: testSecret, Provider: nopProviderForL{}})
	})
	assert.PanicsWithValue(t, "sessiongate: Config.Store wraps a nil store", func() {
		middleware.NewRevoker(middleware.Config{Store: wrappedStore{}, Secret: testSecret})
	})
}

// rvlClockField is an application's wrapper with a clock of its own, a
// field named Clock: it compiled before the store's clock was part of
// store.Store, and must still (the store's clock methods are sealed,
// qualified by their package, so no name of a wrapper's clashes).
type rvlClockField struct {
	store.Store
	Clock    func() time.Time
	UseClock bool
}

// Review L: the store's clock methods, once exported, broke wrappers
// with a member of the same name, and let any module read a store's
// clock or hand it one (a clock reading the store's own overflowed the
// stack). They are sealed: no exported method of a store names a clock,
// and a wrapper with such members works as the bare store, on the
// store's one clock.
func TestReviewLClockSealed(t *testing.T) {
	for _, st := range []store.Store{store.NewMemory(), rvlClockField{Store: store.NewMemory()}} {
		typ := reflect.TypeOf(st)
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			assert.False(t, strings.Contains(name, "Clock") || name == "Now", "%v has an exported method %s", typ, name)
		}
	}
	e := rvfBehind(t, func(c *middleware.Config) {
		c.Store = rvlClockField{Store: store.NewMemory(), Clock: time.Now}
		c.Provider = rvfNoExpiry(c.Provider)
	})
	frontend, session := e.rvfSignIn("field")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: frontend}).StatusCode, "a signed-out token never mints again")
}

type nopProviderForL struct{}

func (nopProviderForL) Name() string { return "nop" }
func (nopProviderForL) Validate(context.Context, string) (*provider.Identity, error) {
	return nil, provider.ErrInvalidToken
}

// A Redis store wrapped twice, an override in between, wall clock.
func TestReviewLWrappedRedis(t *testing.T) {
	var inner *rvlOverride
	e := newEnv(t, "redis", func(c *middleware.Config) {
		inner = &rvlOverride{Store: c.Store}
		c.Store = rvlOuter{wrappedStore{inner}}
		c.Now = time.Now
		c.Lifetime = time.Hour
	})
	frontend := e.fake.Issue("rw", time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	session := r.sessionCookie().Value
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	r = e.do(req{method: http.MethodPost, path: "/api/note?v=kept", cookie: session})
	require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
	assert.Contains(t, e.do(req{path: "/api/note", cookie: session}).body, "kept")
	assert.NotZero(t, inner.commits.Load())
	assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: frontend}).StatusCode)
	assert.NotContains(t, e.logs.String(), "not used")
}

// Cache keyed by selector: sign-in, warm cache, sign-out, re-sign-in with another
// frontend token of the same user continuing; old cookie refused, new served.
func TestReviewLCacheAfterSignOut(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour })
	f1 := e.fake.Issue("c", time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: f1})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	s1 := r.sessionCookie().Value
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s1}).StatusCode)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: f1}).StatusCode)
	}
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: s1}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s1}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: f1}).StatusCode)
	f2 := e.fake.Issue("c", time.Hour)
	r = e.do(req{path: "/api/me", bearer: f2, cookie: s1})
	assert.Equal(t, http.StatusOK, r.StatusCode, r.body)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s1}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: f1}).StatusCode)
}

// Many sessions read concurrently while each is signed out: after its
// DELETE answered, a session is never served again.
func TestReviewLCacheConcurrentSignOut(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour; c.Now = time.Now })
	const n = 24
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			f := e.fake.Issue("cc"+string(rune('a'+i)), time.Hour)
			r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: f})
			if !assert.Equal(t, http.StatusCreated, r.StatusCode, r.body) {
				return
			}
			s := r.sessionCookie().Value
			for j := 0; j < 5; j++ {
				assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode)
			}
			assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: s}).StatusCode)
			for j := 0; j < 3; j++ {
				assert.Contains(t, []int{401, 429}, e.do(req{path: "/api/me", cookie: s}).StatusCode) // 429: the guess limiter, all from one address
				assert.Contains(t, []int{401, 429}, e.do(req{path: "/api/me", bearer: f}).StatusCode)
			}
		}(i)
	}
	wg.Wait()
}
