package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// recorded is one event an eventRecorder saw, with the chain of
// operations its context was in ("exchange/upstream").
type recorded struct {
	middleware.Event
	within string
}

// eventRecorder is an Observer that keeps every event, and threads the
// names of the operations begun through the contexts: so a test sees
// which operation each event happened in.
type eventRecorder struct {
	mu          sync.Mutex
	events, log []recorded // since the last take; all
	begun       atomic.Int64
}

type withinKey struct{}

func within(ctx context.Context) string { s, _ := ctx.Value(withinKey{}).(string); return s }

func (r *eventRecorder) Begin(ctx context.Context, e middleware.Event) context.Context {
	r.begun.Add(1)
	name := e.Kind.String()
	if w := within(ctx); w != "" {
		name = w + "/" + name
	}
	return context.WithValue(ctx, withinKey{}, name)
}

func (r *eventRecorder) Observe(ctx context.Context, e middleware.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recorded{e, within(ctx)})
	r.log = append(r.log, recorded{e, within(ctx)})
}

// all returns every event seen.
func (r *eventRecorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.log...)
}

// assertNoTokenIn checks that no field of any event, printed with %v,
// holds any of tokens.
func assertNoTokenIn(t *testing.T, evs []recorded, tokens []string) {
	t.Helper()
	require.NotEmpty(t, evs)
	for _, e := range evs {
		v := reflect.ValueOf(e.Event)
		for i := range v.NumField() {
			field := fmt.Sprintf("%v", v.Field(i).Interface())
			for _, tok := range tokens {
				if strings.Contains(field, tok) {
					t.Errorf("event %v: field %s holds a token", e.Kind, v.Type().Field(i).Name)
				}
			}
		}
	}
}

// take returns the events seen since the last take.
func (r *eventRecorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// of returns the events of kind k among evs.
func of(evs []recorded, k middleware.EventKind) []recorded {
	var out []recorded
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// signInWith signs user in from a client (X-Test-Client) with a
// User-Agent, and returns the frontend token, the session token and the
// session's public id.
func (e *env) signInWith(user, agent, client string) (frontend, session, id string) {
	e.t.Helper()
	frontend = e.fake.Issue(user, time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend, hdr: map[string]string{"User-Agent": agent, "X-Test-Client": client}})
	require.Equal(e.t, http.StatusCreated, r.StatusCode, r.body)
	return frontend, r.sessionCookie().Value, r.json(e.t.(*testing.T))["session"].(map[string]any)["id"].(string)
}

// downStore is a store that fails as an unreachable one does while down
// is set.
type downStore struct {
	store.Store
	down atomic.Bool
}

func (s *downStore) Lookup(ctx context.Context, key string) (f format.Stored, err error) {
	if s.down.Load() {
		return f, fmt.Errorf("%w: test: the store is down", backend.ErrUnavailable)
	}
	return s.Store.Lookup(ctx, key)
}

const chromeOnMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
const firefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"

// TestEventsOfEachOutcome walks every outcome through the real
// middleware, on each store, and checks the events an Observer gets: what
// they say, which operation each happened in, and that no token is in
// any field of any of them.
func TestEventsOfEachOutcome(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		rec := &eventRecorder{}
		var down *downStore
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.Observer = rec
			c.GuessBurst = 2
			c.ClientIP = func(r *http.Request) string {
				if v := r.Header.Get("X-Test-Client"); v != "" {
					return v
				}
				return "192.0.2.1"
			}
			if kind == "memory" {
				down = &downStore{Store: c.Store}
				c.Store = down
			}
		})
		var tokens []string // every token sent: none may appear in an event

		t.Log("sign-in: an exchange with an upstream call and a mint")
		front, session, id := e.signInWith("mia", chromeOnMac, "198.51.100.7")
		tokens = append(tokens, front, session)
		evs := rec.take()
		minted := of(evs, middleware.EventMinted)
		require.Len(t, minted, 1)
		m := minted[0]
		assert.Equal(t, id, m.SessionID)
		assert.Equal(t, "mia", m.UserID)
		assert.Equal(t, "plurality", m.Provider)
		assert.Equal(t, "198.51.100.7", m.ClientIP)
		assert.Equal(t, "Chrome", m.Device.Family)
		assert.Equal(t, "Mac OS X", m.Device.OS.Family)
		assert.Empty(t, m.Reason, "a new sign-in, not a continuation")
		assert.True(t, m.Expires.After(m.Time))
		assert.Equal(t, "exchange", m.within, "minted within the exchange")
		up := of(evs, middleware.EventUpstream)
		require.Len(t, up, 1)
		assert.Equal(t, middleware.ReasonValid, up[0].Reason)
		assert.Equal(t, "exchange/upstream", up[0].within, "the upstream call is a child of the exchange")
		assert.Positive(t, up[0].Duration)
		w := of(evs, middleware.EventStoreWrite)
		require.Len(t, w, 1)
		assert.Equal(t, middleware.ReasonWriteMint, w[0].Reason)
		assert.Equal(t, "exchange/store_write", w[0].within, "the mint's write is a child of the exchange")
		assert.Equal(t, id, w[0].SessionID)
		ex := of(evs, middleware.EventExchange)
		require.Len(t, ex, 1)
		assert.Equal(t, middleware.ReasonMinted, ex[0].Reason)
		assert.Equal(t, "exchange", ex[0].within)
		assert.GreaterOrEqual(t, ex[0].Duration, up[0].Duration, "the exchange lasts its upstream call")
		assert.EqualValues(t, 3, rec.begun.Load(), "exchange, upstream, store write begun")
		t.Logf("sign-in: exchange %v, upstream %v, store write %v", ex[0].Duration, up[0].Duration, w[0].Duration)

		t.Log("reuse by cookie; by the frontend token alone")
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
		reused := of(rec.take(), middleware.EventReused)
		require.Len(t, reused, 1)
		assert.Equal(t, id, reused[0].SessionID)
		assert.Equal(t, "mia", reused[0].UserID)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		evs = rec.take()
		require.Len(t, of(evs, middleware.EventExchanged), 1)
		assert.Equal(t, id, of(evs, middleware.EventExchanged)[0].SessionID)
		assert.Equal(t, middleware.ReasonExisting, of(evs, middleware.EventExchange)[0].Reason)
		assert.Empty(t, of(evs, middleware.EventUpstream), "no upstream call")

		t.Log("rejected tokens, each with its reason")
		bad := e.fake.Issue("mia", time.Hour)
		e.fake.Revoke(bad)
		expired := e.fake.Issue("mia", time.Hour) // the upstream accepts it; our clock says it expired
		tokens = append(tokens, bad, expired)
		for _, c := range []struct {
			token string
			why   middleware.Reason
		}{
			{bad, middleware.ReasonInvalid},
			{bad, middleware.ReasonRejectedRecently},
			{"not a token", middleware.ReasonMalformed},
			{expired, middleware.ReasonExpired},
		} {
			if c.why == middleware.ReasonExpired {
				e.clock.Advance(3 * time.Hour)
			}
			r := e.do(req{path: "/api/me", bearer: c.token, hdr: map[string]string{"X-Test-Client": "203.0.113.9"}})
			if c.why == middleware.ReasonExpired {
				e.clock.Advance(-3 * time.Hour)
			}
			require.Equal(t, http.StatusUnauthorized, r.StatusCode, r.body)
			rej := of(rec.take(), middleware.EventRejected)
			require.Len(t, rej, 1, c.why)
			assert.Equal(t, c.why, rej[0].Reason)
			assert.Equal(t, "plurality", rej[0].Provider)
		}

		t.Log("sign out: this device, everywhere, others, revoke one, replaced")
		_, s2, _ := e.signInWith("mia", firefoxOnLinux, "")
		tokens = append(tokens, s2)
		rec.take()
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session}).StatusCode)
		assertEnded(t, rec.take(), middleware.ReasonSignedOut, id)
		require.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		assert.Equal(t, middleware.ReasonSignedOut, of(rec.take(), middleware.EventRejected)[0].Reason, "the token of a signed-out session")

		_, s3, id3 := e.signInWith("mia", chromeOnMac, "")
		_, s4, id4 := e.signInWith("mia", chromeOnMac, "")
		tokens = append(tokens, s3, s4)
		rec.take()
		require.Equal(t, http.StatusOK, e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: s3}).StatusCode)
		evs = rec.take()
		ended := of(evs, middleware.EventEnded)
		require.Len(t, ended, 2, "s2 and s4")
		for _, en := range ended {
			assert.Equal(t, middleware.ReasonSignedOutOthers, en.Reason)
			assert.NotEqual(t, id3, en.SessionID)
		}
		assert.Contains(t, []string{ended[0].SessionID, ended[1].SessionID}, id4)
		assert.Equal(t, middleware.ReasonWriteEnd, of(evs, middleware.EventStoreWrite)[0].Reason)

		_, s5, id5 := e.signInWith("mia", chromeOnMac, "")
		tokens = append(tokens, s5)
		rec.take()
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + id5, cookie: s3}).StatusCode)
		assertEnded(t, rec.take(), middleware.ReasonRevoked, id5)

		_, s6, id6 := e.signInWith("mia", chromeOnMac, "")
		tokens = append(tokens, s6)
		rec.take()
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: s6}).StatusCode)
		evs = rec.take()
		require.Len(t, of(evs, middleware.EventEnded), 2, "s3 and s6")
		for _, en := range of(evs, middleware.EventEnded) {
			assert.Equal(t, middleware.ReasonSignedOutAll, en.Reason)
			assert.Contains(t, []string{id3, id6}, en.SessionID)
		}

		_, s7, id7 := e.signInWith("mia", chromeOnMac, "")
		other := e.fake.Issue("noah", time.Hour)
		tokens = append(tokens, s7, other)
		rec.take()
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s7, bearer: other}).StatusCode)
		evs = rec.take()
		assertEnded(t, evs, middleware.ReasonReplaced, id7)
		assert.Equal(t, "noah", of(evs, middleware.EventMinted)[0].UserID)

		t.Log("rate limited: dead cookies from one client")
		dead := s7 // replaced: opens nothing now
		for range 3 {
			e.do(req{path: "/public", cookie: dead, hdr: map[string]string{"X-Test-Client": "203.0.113.50"}})
		}
		evs = rec.take()
		limited := of(evs, middleware.EventClientLimited)
		require.Len(t, limited, 1, "a lockout is told once")
		assert.Equal(t, "203.0.113.50", limited[0].ClientIP)
		assert.Len(t, of(evs, middleware.EventRateLimited), 1, "the request after the lockout got 429")

		t.Log("upstream error")
		e.fake.SetFault(providertest.Fault{Status: 500})
		failing := e.fake.Issue("mia", time.Hour)
		tokens = append(tokens, failing)
		require.Equal(t, http.StatusServiceUnavailable, e.do(req{path: "/api/me", bearer: failing}).StatusCode)
		e.fake.SetFault(providertest.Fault{})
		evs = rec.take()
		up = of(evs, middleware.EventUpstream)
		require.Len(t, up, 1)
		assert.Equal(t, middleware.ReasonUnavailable, up[0].Reason)
		assert.Error(t, up[0].Err)
		assert.Equal(t, middleware.ReasonUnavailable, of(evs, middleware.EventExchange)[0].Reason)

		t.Log("store error")
		_, s8, _ := e.signInWith("mia", chromeOnMac, "")
		tokens = append(tokens, s8)
		rec.take()
		if kind == "memory" {
			down.down.Store(true)
		} else {
			e.redis.Stop()
		}
		require.Equal(t, http.StatusServiceUnavailable, e.do(req{path: "/api/me", header: s8}).StatusCode)
		se := of(rec.take(), middleware.EventStoreError)
		require.Len(t, se, 1)
		assert.Equal(t, middleware.ReasonRead, se[0].Reason)
		assert.True(t, errors.Is(se[0].Err, store.ErrUnavailable), "%v", se[0].Err)

		assertNoTokenIn(t, rec.all(), tokens)
	})
}

// assertEnded checks that evs ended exactly the session id, for why.
func assertEnded(t *testing.T, evs []recorded, why middleware.Reason, id string) {
	t.Helper()
	ended := of(evs, middleware.EventEnded)
	require.Len(t, ended, 1)
	assert.Equal(t, why, ended[0].Reason)
	assert.Equal(t, id, ended[0].SessionID)
	assert.Equal(t, "mia", ended[0].UserID)
	assert.Equal(t, "plurality", ended[0].Provider)
}

// panickyObserver is an Observer that panics on every call.
type panickyObserver struct{}

func (panickyObserver) Begin(context.Context, middleware.Event) context.Context {
	panic("observer bug")
}
func (panickyObserver) Observe(context.Context, middleware.Event) { panic("observer bug") }

// TestAnObserverThatPanicsBreaksNoRequest: a panicking observer costs
// neither the request nor the observers beside it; the panic is logged,
// without its value (it could hold anything), at most once a second.
func TestAnObserverThatPanicsBreaksNoRequest(t *testing.T) {
	t.Parallel()
	rec := &eventRecorder{}
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Observer = middleware.Observers(panickyObserver{}, rec) })
	_, session := e.signIn("mia")
	for range 3 {
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: session}).StatusCode)
	}
	evs := rec.all()
	assert.Len(t, of(evs, middleware.EventMinted), 1, "the next observer still gets the events")
	assert.Len(t, of(evs, middleware.EventReused), 3)
	up := of(evs, middleware.EventUpstream)
	require.Len(t, up, 1)
	assert.Equal(t, "exchange/upstream", up[0].within, "a panicking Begin leaves the context chain of the others")
	logs := e.logs.String()
	n := strings.Count(logs, "an Observer panicked")
	assert.GreaterOrEqual(t, n, 1, "the panic is logged")
	t.Logf("%d panics (Begin and Observe) logged in %d lines (at most one a second)", int(rec.begun.Load())+len(evs), n)
	assert.NotContains(t, logs, "observer bug", "a panic's value is not logged")
}

func TestEventKindNames(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "minted", middleware.EventMinted.String())
	assert.Equal(t, "store_write", middleware.EventStoreWrite.String())
	assert.Equal(t, "EventKind(0)", middleware.EventKind(0).String())
	assert.Equal(t, "EventKind(200)", middleware.EventKind(200).String())
	assert.True(t, middleware.EventUpstream.Operation())
	assert.False(t, middleware.EventMinted.Operation())
}

// TestEventOfASessionSeenExpired: a session past its lifetime ends when a
// request shows it (ReasonExpired), on each store; Metrics does not count
// it among the sessions ended (nothing ended it).
func TestEventOfASessionSeenExpired(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		rec := &eventRecorder{}
		// Idle too long, within its lifetime: the store still holds it
		// (past its lifetime, the store, Redis or memory, no longer
		// would), and the engine sees it expired.
		e := newEnv(t, kind, func(c *middleware.Config) { c.Observer = rec; c.Lifetime = time.Hour; c.IdleTimeout = 10 * time.Minute })
		front, session := e.signIn("mia")
		id := e.do(req{path: "/auth/session", cookie: session}).json(t)["session"].(map[string]any)["id"].(string)
		rec.take()
		e.clock.Advance(20 * time.Minute)
		require.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: session}).StatusCode)
		ended := of(rec.take(), middleware.EventEnded)
		require.Len(t, ended, 1)
		assert.Equal(t, middleware.ReasonExpired, ended[0].Reason)
		assert.Equal(t, id, ended[0].SessionID)
		assert.Zero(t, e.auth.Metrics().SessionsEnded)
		assertNoTokenIn(t, rec.all(), []string{front, session})
	})
}
