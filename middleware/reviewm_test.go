package middleware_test

import (
	"context"
	"net/http"
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

// rvmRename is a provider (Name "plurality", no ':') whose Identity names
// another provider: user "u1" -> provider "a:b" user "c"; "u2" -> provider
// "a" user "b:c". Both index keys are "a:b:c".
func rvmRename(p provider.Provider) provider.Provider {
	return rvnOdd(p, map[string][2]string{"u1": {"a:b", "c"}, "u2": {"a", "b:c"}})
}

// Review M: New refuses a provider Name with a ':', but a provider may
// name another provider in its Identity: user "u1" as provider "a:b"'s
// "c" shared one user index with "u2" as provider "a"'s "b:c", and with
// MaxSessionsPerUser 1, u2's sign-in ended u1's session. Such an
// identity is refused (401 invalid_token); the other signs in.
func TestReviewMIdentityProviderColonSharesIndex(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) {
		c.Provider = rvmRename(c.Provider)
		c.MaxSessionsPerUser = 1
	})
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u1", time.Hour)})
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, r.body)
	assert.Contains(t, r.body, "invalid_token")
	r = e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u2", time.Hour)})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	s2 := r.sessionCookie().Value
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s2}).StatusCode)
}

type rvmPtr struct{ store.Store }

func TestReviewMNilWrappers(t *testing.T) {
	var p *rvmPtr
	assert.PanicsWithValue(t, "sessiongate: Config.Store wraps a nil store", func() {
		middleware.New(middleware.Config{Store: p, Provider: rvmNamed{}, Secret: testSecret})
	}, "typed nil pointer wrapper")
	assert.PanicsWithValue(t, "sessiongate: Config.Store wraps a nil store", func() {
		middleware.NewRevoker(middleware.Config{Store: wrappedStore{}, Secret: testSecret})
	}, "revoker")
	type deep struct{ *rvmPtr }
	assert.PanicsWithValue(t, "sessiongate: Config.Store wraps a nil store", func() {
		middleware.NewRevoker(middleware.Config{Store: deep{&rvmPtr{}}, Secret: testSecret})
	}, "deep")
}

func TestReviewMConcurrentBuilds(t *testing.T) {
	st := store.NewMemory()
	var wg sync.WaitGroup
	var firsts atomic.Int64
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := time.Duration(i) * time.Hour
			now := func() time.Time { return time.Now().Add(off) }
			if i%2 == 0 {
				middleware.NewRevoker(middleware.Config{Store: wrappedStore{st}, Secret: testSecret, Now: now})
			} else {
				middleware.New(middleware.Config{Store: &rvmPtr{st}, Provider: rvmNamed{}, Secret: testSecret, Now: now})
			}
			firsts.Add(1)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 16, firsts.Load())
}

// Review M: a store wrapped in an application's own type reads the
// clock once more per steady request than the bare store (twice, not
// once): the engine calls the wrapper's Lookup, which the wrapper may
// override to see every read, rather than the bare store's LookupAt
// behind its back. Both readings are of the store's one clock
// (Config.Now says so).
func TestReviewMWrapperClockReads(t *testing.T) {
	reads := func(wrap bool) int64 {
		var n atomic.Int64
		var st store.Store = store.NewMemory()
		if wrap {
			st = wrappedStore{st}
		}
		e := newEnv(t, "memory", func(c *middleware.Config) {
			c.Store = st
			inner := c.Now
			c.Now = func() time.Time { n.Add(1); return inner() }
		})
		f := e.fake.Issue("w", time.Hour)
		r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: f})
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		s := r.sessionCookie().Value
		e.do(req{path: "/api/me", cookie: s})
		before := n.Load()
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode)
		return n.Load() - before
	}
	bare, wrapped := reads(false), reads(true)
	t.Logf("clock reads per steady request: bare %d, wrapped %d", bare, wrapped)
	assert.EqualValues(t, 1, bare)
	assert.EqualValues(t, 2, wrapped)
}

type rvmNamed struct{}

func (rvmNamed) Name() string { return "named" }
func (rvmNamed) Validate(context.Context, string) (*provider.Identity, error) {
	return nil, provider.ErrInvalidToken
}
