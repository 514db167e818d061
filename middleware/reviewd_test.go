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
	"github.com/sessiongate/sessiongate/provider"
)

// eventLog collects events.
type eventLog struct {
	mu sync.Mutex
	ev []middleware.Event
}

func (l *eventLog) observe(_ context.Context, e middleware.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) of(k middleware.EventKind) []middleware.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []middleware.Event
	for _, e := range l.ev {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// A token the provider accepted but whose session has expired by
// Config.Now when the engine mints it (Config.Now ahead of the provider's
// clock, or the token's exp passing between the upstream answer and the
// mint) is "expired during its exchange" just like the store-side case
// (ErrExpiredMeanwhile), which the limiter does not count. The engine-side
// case is counted as a guess: a legitimate client is rate limited.
func TestReviewDEngineExpiredInExchangeIsNotAGuess(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		var evs eventLog
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.GuessBurst = 1
			c.GuessInterval = time.Hour
			now := c.Now
			c.Now = func() time.Time { return now().Add(2 * time.Hour) } // skewed ahead of the provider
			c.Observer = middleware.ObserverFunc(evs.observe)
		})
		for i := range 3 {
			front := e.fake.Issue("skewed", time.Hour) // valid for the provider
			r := e.do(req{path: "/api/me", bearer: front})
			t.Logf("exchange %d: %d %s", i, r.StatusCode, strings.TrimSpace(r.body))
			assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		}
		for _, ev := range evs.of(middleware.EventRejected) {
			t.Logf("rejected: reason=%s err=%v", ev.Reason, ev.Err)
		}
		assert.Empty(t, evs.of(middleware.EventClientLimited),
			"the provider accepted every token: none is a guess, the client must not be limited")
	})
}

// The store-side twin: a provider that accepts a token that expired a
// minute ago by the wall clock, Redis's, while Config.Now is an hour
// behind it: the mint finds it expired: ErrExpiredMeanwhile. Its
// rejection event's reason should be ReasonExpired (the token expired),
// as its message says; it is not a guess. The memory store judges its
// entries at the engine's clock (backend.LookupAt, NewSession.At): by
// that clock the token is live, and the session is minted.
func TestReviewDStoreExpiredInExchangeReason(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		if kind == "memory" {
			e := newEnv(t, kind, func(c *middleware.Config) {
				c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
				c.Provider = acceptAll{}
			})
			assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: "tok" + strings.Repeat("x", 10)}).StatusCode)
			return
		}
		var evs eventLog
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.GuessBurst = 1
			c.GuessInterval = time.Hour
			c.Observer = middleware.ObserverFunc(evs.observe)
			c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			c.Provider = acceptAll{}
		})
		for i := range 3 {
			r := e.do(req{path: "/api/me", bearer: "tok" + strings.Repeat("x", i+10)})
			t.Logf("exchange %d: %d %s", i, r.StatusCode, strings.TrimSpace(r.body))
			assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		}
		assert.Empty(t, evs.of(middleware.EventClientLimited))
		rej := evs.of(middleware.EventRejected)
		require.NotEmpty(t, rej)
		for _, ev := range rej {
			assert.Equal(t, middleware.ReasonExpired, ev.Reason, "err=%v", ev.Err)
		}
		for _, ev := range evs.of(middleware.EventStoreError) {
			t.Errorf("store error event for an expired mint: %v", ev.Err)
		}
		for _, ev := range evs.of(middleware.EventStoreWrite) {
			t.Logf("store write: reason=%s err=%v", ev.Reason, ev.Err)
		}
	})
}

// acceptAll accepts every token, for a user "u", expiring a minute before
// the wall clock.
type acceptAll struct{}

func (acceptAll) Name() string { return "acceptall" }
func (acceptAll) Validate(context.Context, string) (*provider.Identity, error) {
	return &provider.Identity{UserID: "u", Expiry: time.Now().Add(-time.Minute)}, nil
}

// Sessions with scs values above the record cache's 2 KiB still work:
// values readable on every request, writes persisted, by cookie, session
// header and bearer token alike.
func TestReviewDBigValues(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		front, tok := e.signIn("big")
		big := strings.Repeat("v", 5000)
		r := e.do(req{method: http.MethodPost, path: "/api/note?v=" + big, cookie: tok})
		require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
		for i := range 4 {
			for _, q := range []req{{path: "/api/note", cookie: tok}, {path: "/api/note", header: tok}, {path: "/api/note", bearer: front}} {
				r := e.do(q)
				require.Equal(t, http.StatusOK, r.StatusCode, "%d: %s", i, r.body)
				require.Equal(t, big, r.body, "%d", i)
			}
		}
		bigger := strings.Repeat("w", 6000)
		r = e.do(req{method: http.MethodPost, path: "/api/note?v=" + bigger, bearer: front})
		require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
		assert.Equal(t, bigger, e.do(req{path: "/api/note", header: tok}).body)
		r = e.do(req{method: http.MethodPost, path: "/api/note?v=small", header: tok})
		require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
		assert.Equal(t, "small", e.do(req{path: "/api/note", bearer: front}).body)
		assert.Equal(t, "small", e.do(req{path: "/api/note", cookie: tok}).body)
		// a second process sharing the store sees the writes
		if kind == "redis" {
			e2 := newEnvSharing(t, kind, e)
			assert.Equal(t, "small", e2.do(req{path: "/api/note", cookie: tok}).body)
		}
	})
}
