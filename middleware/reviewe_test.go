package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// A frontend token outlives its session's Lifetime; the clock (Config.Now,
// a fake one ahead of time.Now) passes the Lifetime; the same token comes
// back. It must mint a new session (200), as before 226e895.
func TestReviewEFakeClockPastLifetimeBearer(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour })
	frontend := e.fake.Issue("rve", 3*time.Hour)
	r := e.do(req{path: "/api/me", bearer: frontend})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	calls := e.fake.Calls()
	e.clock.Advance(61 * time.Minute)
	for i := range 3 {
		r = e.do(req{path: "/api/me", bearer: frontend})
		t.Logf("request %d after the lifetime: %d %s", i, r.StatusCode, strings.TrimSpace(r.body))
		assert.Equal(t, http.StatusOK, r.StatusCode, "a new session for a valid token")
	}
	t.Logf("upstream calls after the lifetime: %d", e.fake.Calls()-calls)
}

type rveObs struct {
	mu  sync.Mutex
	evs []middleware.Event
}

func (o *rveObs) Begin(ctx context.Context, _ middleware.Event) context.Context { return ctx }
func (o *rveObs) Observe(_ context.Context, ev middleware.Event) {
	o.mu.Lock()
	o.evs = append(o.evs, ev)
	o.mu.Unlock()
}

// Metrics with and without an Observer count the same; events carry Time
// (and Duration for operations) with an Observer; the DEBUG reuse log
// line is written either way.
func TestReviewEMetricsWithAndWithoutObserver(t *testing.T) {
	var got [2]middleware.Metrics
	var lines [2]int
	for i, withObs := range []bool{false, true} {
		obs := &rveObs{}
		e := newEnv(t, "memory", func(c *middleware.Config) {
			if withObs {
				c.Observer = obs
			}
		})
		frontend, session := e.signIn("mia")
		for range 5 {
			require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
		}
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: frontend}).StatusCode)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: frontend, cookie: session}).StatusCode)
		m := e.auth.Metrics()
		t.Logf("observer=%v metrics=%+v", withObs, m)
		assert.EqualValues(t, 1, m.UpstreamCalls)
		assert.Greater(t, m.UpstreamSeconds, 0.0, "UpstreamSeconds without an observer too")
		assert.EqualValues(t, 2, m.Exchanges, "sign-in, the bearer")
		assert.EqualValues(t, 7, m.SessionsReused, "5 cookie, bearer, bearer+cookie")
		got[i] = m
		lines[i] = strings.Count(e.logs.String(), "session reused")
		if withObs {
			obs.mu.Lock()
			for _, ev := range obs.evs {
				assert.False(t, ev.Time.IsZero(), "event %s has a Time", ev.Kind)
				if ev.Kind == middleware.EventUpstream || ev.Kind == middleware.EventExchange {
					assert.Greater(t, ev.Duration, time.Duration(0), "event %s has a Duration", ev.Kind)
				}
			}
			obs.mu.Unlock()
		}
	}
	got[0].UpstreamSeconds, got[1].UpstreamSeconds = 0, 0
	assert.Equal(t, got[0], got[1], "the same counts with and without an observer")
	t.Logf("DEBUG 'session reused' lines: without observer %d, with %d", lines[0], lines[1])
	assert.Equal(t, lines[0], lines[1])
}

// Two different sessions, one by bearer (frontend token) and one by cookie.
func TestReviewEBearerAndCookieOfDifferentSessions(t *testing.T) {
	e := newEnv(t, "memory")
	_, s1 := e.signIn("ann")
	f2, _ := e.signIn("bob")
	r := e.do(req{path: "/api/me", bearer: f2, cookie: s1})
	t.Logf("%d %s", r.StatusCode, r.body)
	require.Equal(t, http.StatusOK, r.StatusCode)
	assert.Contains(t, r.body, `"bob"`, "the frontend token wins")
}

// Signed out; the fake clock passes the session's Lifetime (not the
// token's expiry); the same frontend token comes back: still refused.
func TestReviewESignOutMarkPastLifetime(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Lifetime = time.Hour })
	frontend := e.fake.Issue("gone", 3*time.Hour)
	r := e.do(req{path: "/api/me", bearer: frontend})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	session := r.Header.Get("X-Session-Token")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", header: session}).StatusCode)
	for _, adv := range []time.Duration{30 * time.Minute, 31 * time.Minute, 90 * time.Minute} {
		e.clock.Advance(adv)
		calls := e.fake.Calls()
		r = e.do(req{path: "/api/me", bearer: frontend})
		t.Logf("+%v: %d %s (upstream calls %d)", adv, r.StatusCode, strings.TrimSpace(r.body), e.fake.Calls()-calls)
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}
}

// Idle timeout on the fake clock: idle past it, the session is gone.
func TestReviewEIdleTimeoutFakeClock(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.IdleTimeout = 10 * time.Minute })
	_, session := e.signIn("idle")
	e.clock.Advance(9 * time.Minute)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	e.clock.Advance(9 * time.Minute)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode, "kept alive")
	e.clock.Advance(11 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode, "idle too long")
}
