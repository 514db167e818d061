package middleware_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

const rvjIgnored = "this one's Config.Now is not used"

// Review J: two middlewares on one memory store, each with its own fake
// clock of one type (method values clkA.Now, clkB.Now), b's 2h ahead.
// Follows compares reflect code pointers: every method value of
// (*clock).Now has the same one, so b's different clock counts as "the
// same" and is ignored without the log Config.Now promises.
func TestReviewJDistinctMethodClocksNotLogged(t *testing.T) {
	a := newEnv(t, "memory")
	b := newEnvSharing(t, "memory", a, func(c *middleware.Config) {
		c.Store = a.store
		c.Now = (&clock{}).Now // another clock object of the same type
	})
	t.Logf("b's log: %q", b.logs.String())
	assert.Contains(t, b.logs.String(), rvjIgnored, "a different Now is logged")
}

// Review J: the same with closures from one constructor (one code
// pointer, different captured offsets): the second, 2h ahead, is
// silently ignored.
func TestReviewJDistinctClosureClocksNotLogged(t *testing.T) {
	mk := func(off time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(off) }
	}
	a := newEnv(t, "memory", func(c *middleware.Config) { c.Now = mk(0) })
	b := newEnvSharing(t, "memory", a, func(c *middleware.Config) { c.Store = a.store; c.Now = mk(2 * time.Hour) })
	t.Logf("b's log: %q", b.logs.String())
	assert.Contains(t, b.logs.String(), rvjIgnored, "a different Now is logged")
}

// Review J: the store's clock was reachable from outside (an exported
// Now method on the memory store); a Config.Now that read it was latched
// as the store's clock, which then called itself until the stack
// overflowed, killing the process. The store's clock now has a type of
// the module's own (backend.Clock): no code outside the module can read
// it or hand it one.
func TestReviewJSelfReferentialClockLoops(t *testing.T) {
	st := store.NewMemory()
	_, ok := st.(interface{ Now() time.Time })
	assert.False(t, ok, "the store's clock is not reachable from outside")
	_, ok = any(st).(interface{ UseClock(func() time.Time) bool })
	assert.False(t, ok, "nor can it be given one from outside")
}

// Review J: many goroutines build middlewares and Revokers at once on a
// FRESH memory store (no clock latched yet), half on the defaults, half
// with their own Now (some far behind, some far ahead), while those
// already built serve: every one signs in and serves its sessions, each
// session is served by every other middleware, and a Revoker revokes it.
func TestReviewJConcurrentFirstLatch(t *testing.T) {
	base := newEnv(t, "memory") // only for its provider; its store is not shared
	st := store.NewMemory()
	const n = 10
	envs := make([]*env, n)
	revs := make([]*middleware.Revoker, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			off := time.Duration(i-n/2) * 5 * time.Minute
			envs[i] = newEnvSharing(t, "memory", base, func(c *middleware.Config) {
				c.Store = st
				c.Lifetime = time.Hour
				c.IdleTimeout = 30 * time.Minute
				c.MaxSessionsPerUser = 3
				if i%2 == 0 {
					c.Now = nil
				} else {
					c.Now = func() time.Time { return time.Now().Add(off) }
				}
			})
			cfg := middleware.Config{Store: st, Secret: testSecret, Lifetime: time.Hour,
				Logger: slog.New(slog.DiscardHandler)}
			if i%3 == 0 {
				cfg.Now = func() time.Time { return time.Now().Add(-off) }
			}
			revs[i] = middleware.NewRevoker(cfg)
		})
	}
	wg.Wait()
	type res struct{ mint, self, other, after int }
	out := make([]res, n)
	for i := range n {
		wg.Go(func() {
			e := envs[i]
			user := fmt.Sprintf("u%d", i)
			frontend := e.fake.Issue(user, 4*time.Hour)
			r, err := e.try(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
			if err != nil {
				out[i].mint = -1
				return
			}
			out[i].mint = r.StatusCode
			if r.StatusCode != http.StatusCreated {
				return
			}
			s := r.sessionCookie().Value
			if r, err := e.try(req{path: "/api/me", cookie: s}); err == nil {
				out[i].self = r.StatusCode
			}
			if r, err := envs[(i+1)%n].try(req{path: "/api/me", cookie: s}); err == nil {
				out[i].other = r.StatusCode
			}
			if k, err := revs[(i+2)%n].RevokeUser(t.Context(), "plurality", user); err != nil || k != 1 {
				out[i].after = -k - 100
				return
			}
			if r, err := envs[(i+3)%n].try(req{path: "/api/me", cookie: s}); err == nil {
				out[i].after = r.StatusCode
			}
		})
	}
	wg.Wait()
	t.Logf("results: %+v", out)
	for i, r := range out {
		assert.Equal(t, res{http.StatusCreated, http.StatusOK, http.StatusOK, http.StatusUnauthorized}, r, "env %d", i)
	}
}

// Review J: New latches the store's clock (storeClock) before it checks
// the config: a middleware whose New panics (no Provider, a short
// Secret) still gives the store its clock. A program that recovers (a
// config check, a test) and then builds its real middleware on the
// defaults finds the store on the dead one's clock (here 6h ahead): every
// valid 4h frontend token is refused as expired.
func TestReviewJPanickedNewLatchesClock(t *testing.T) {
	base := newEnv(t, "memory")
	st := store.NewMemory()
	func() {
		defer func() { t.Logf("New panicked: %v", recover()) }()
		middleware.New(middleware.Config{Store: st, Secret: "short", Provider: nil,
			Now: func() time.Time { return time.Now().Add(6 * time.Hour) }})
	}()
	e := newEnvSharing(t, "memory", base, func(c *middleware.Config) { c.Store = st; c.Now = nil })
	frontend := e.fake.Issue("ivan", 4*time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	t.Logf("sign-in after a panicked New: %d %s", r.StatusCode, r.body)
	assert.Equal(t, http.StatusCreated, r.StatusCode, "a middleware that was never built gives no clock")
}

// Review J (held): another middleware's clock given as a store's
// Config.Now: the store follows it, and a later middleware's Now does
// not switch it.
func TestReviewJOtherStoresNowNotLatched(t *testing.T) {
	a := newEnv(t, "memory")
	a.clock.Advance(30 * time.Minute)
	aNow := a.clock.Now
	stB := store.NewMemory()
	b := newEnvSharing(t, "memory", a, func(c *middleware.Config) { c.Store = stB; c.Now = aNow; c.Lifetime = time.Hour })
	_, s := b.rvfSignIn("judy")
	require.Equal(t, http.StatusOK, b.do(req{path: "/api/me", cookie: s}).StatusCode)
	later := newEnvSharing(t, "memory", a, func(c *middleware.Config) {
		c.Store = stB
		c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	})
	t.Logf("b's log %q; later's log %q", b.logs.String(), later.logs.String())
	r := b.do(req{path: "/api/me", cookie: s})
	t.Logf("b's live session after a later middleware: %d %s", r.StatusCode, r.body)
	assert.Equal(t, http.StatusOK, r.StatusCode, "the first middleware's clock stays the store's")
}
