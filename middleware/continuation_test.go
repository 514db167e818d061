package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
)

// expSpell is spellings with an expiry per credential ("<user>-<n>").
type expSpell struct {
	calls atomic.Int64
	mu    sync.Mutex
	exp   map[string]time.Time
}

func (p *expSpell) Name() string { return "spell" }
func (p *expSpell) Validate(_ context.Context, token string) (*provider.Identity, error) {
	p.calls.Add(1)
	cred, _, _ := strings.Cut(token, ".")
	user, _, ok := strings.Cut(cred, "-")
	if !ok {
		return nil, &provider.InvalidTokenError{Provider: "spell", Reason: "not a test token"}
	}
	p.mu.Lock()
	e := p.exp[cred]
	p.mu.Unlock()
	if !e.IsZero() && !time.Now().Before(e) {
		return nil, &provider.InvalidTokenError{Provider: "spell", Reason: "expired"}
	}
	return &provider.Identity{UserID: user, TokenID: cred, Expiry: e}, nil
}
func (p *expSpell) set(cred string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exp == nil {
		p.exp = map[string]time.Time{}
	}
	p.exp[cred] = time.Now().Add(d)
}

func newExpEnv(t *testing.T, kind string) (*env, *expSpell) {
	p := &expSpell{}
	return newEnv(t, kind, func(c *middleware.Config) { c.Provider = p }), p
}

// another spelling of the continued token mints after the device's sign-out.
func TestEverySpellingOfAContinuedCredentialIsSignedOutWithItsDevice(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, _ := newExpEnv(t, kind)
		ra := e.exchange("alice-1.first")
		require.Equal(t, 201, ra.StatusCode, ra.body)
		rb := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: "alice-2.first", cookie: ra.sessionCookie().Value})
		require.Equal(t, 201, rb.StatusCode, rb.body)
		require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: rb.sessionCookie().Value}).StatusCode)
		for _, tok := range []string{"alice-1.first", "alice-2.first", "alice-2.other", "alice-1.other"} {
			r := e.do(req{path: "/api/me", bearer: tok})
			assert.Equal(t, 401, r.StatusCode, "%s after the device signed out: %s", tok, r.body)
		}
	})
}

// the continuing token expires before the continued one: once its
// sign-out mark expires, the continued token (still valid) signs in again.
func TestAContinuedTokensMarkLastsAsLongAsThatToken(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, p := newExpEnv(t, kind)
		p.set("alice-1", time.Hour)             // B: the tab's newer token, long-lived
		p.set("alice-2", 1500*time.Millisecond) // A: another tab's older, short-lived token
		rb := e.exchange("alice-1.x")
		require.Equal(t, 201, rb.StatusCode, rb.body)
		ra := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: "alice-2.x", cookie: rb.sessionCookie().Value})
		require.Equal(t, 201, ra.StatusCode, ra.body)
		require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: ra.sessionCookie().Value}).StatusCode)
		r := e.do(req{path: "/api/me", bearer: "alice-1.x"})
		require.Equal(t, 401, r.StatusCode, "right after the sign-out: %s", r.body)
		time.Sleep(2500 * time.Millisecond)
		r = e.do(req{path: "/api/me", bearer: "alice-1.x"})
		assert.Equal(t, 401, r.StatusCode, "signed-out token alice-1 (valid for an hour) after alice-2's mark expired: %s", r.body)
	})
}

// a device continued more than 8 times, then signed out: its first
// token signs in again.
func TestALongChainOfContinuationsIsSignedOutWhole(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		toks, cookie := continueChain(t, e, "alice", 10)
		require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: cookie}).StatusCode)
		for i, tok := range toks {
			r := e.do(req{path: "/api/me", bearer: tok})
			assert.Equal(t, 401, r.StatusCode, "token %d of the signed-out device: %s", i, r.body)
		}
	})
}

// Two tabs sharing the cookie of a device that continued through 10
// tokens: each token, sent again, is that device, validated once.
func TestALongChainOfContinuationsValidatesEachTokenOnce(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		toks, cookie := continueChain(t, e, "alice", 10)
		calls := e.fake.Calls()
		ids := map[string]bool{}
		for round := 0; round < 2; round++ {
			for i, tok := range toks {
				r := e.do(req{path: "/auth/session", bearer: tok, cookie: cookie})
				require.Equal(t, 200, r.StatusCode, "token %d: %s", i, r.body)
				if c := r.sessionCookie(); c != nil {
					cookie = c.Value
				}
				ids[r.json(t)["session"].(map[string]any)["id"].(string)] = true
			}
		}
		assert.Equal(t, calls, e.fake.Calls(), "each token validated once")
	})
}

// two requests with one new token share one flight; the second
// carried another session, which is neither continued nor ended.
func TestRequestsSharingAnExchangeEachEndTheirOwnSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		g := &gate{n: -1, opened: make(chan struct{})}
		close(g.opened)
		e := newEnv(t, kind, func(c *middleware.Config) { g.Provider = c.Provider; c.Provider = g })
		ra := e.exchange(e.fake.Issue("alice", time.Hour))
		rx := e.exchange(e.fake.Issue("bob", time.Hour))
		require.Equal(t, 201, ra.StatusCode)
		require.Equal(t, 201, rx.StatusCode)
		require.Equal(t, 204, e.do(req{method: http.MethodPost, path: "/api/note?v=bobs-secret", cookie: rx.sessionCookie().Value}).StatusCode)
		g.entered, g.hold = make(chan struct{}, 1), make(chan struct{})
		b := e.fake.Issue("alice", time.Hour)
		d1, d2 := make(chan resp), make(chan resp)
		go func() {
			d1 <- e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: ra.sessionCookie().Value})
		}()
		<-g.entered
		g.entered = nil
		go func() {
			d2 <- e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: rx.sessionCookie().Value})
		}()
		time.Sleep(500 * time.Millisecond)
		close(g.hold)
		r1, r2 := <-d1, <-d2
		require.Equal(t, 201, r1.StatusCode, r1.body)
		require.Equal(t, 201, r2.StatusCode, r2.body)
		me := e.do(req{path: "/api/note", cookie: rx.sessionCookie().Value})
		assert.Equal(t, 401, me.StatusCode, "bob's session, carried by a request that got alice's new session, still lives: %s", me.body)
	})
}

// A's device was replaced by bob (not a sign-out); B, which continued
// A, later signed in elsewhere and signed out. A, never signed out, is refused.
func TestAReplacedTokenIsNotSignedOutByAnotherDevice(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		a, b := e.fake.Issue("alice", time.Hour), e.fake.Issue("alice", time.Hour)
		ra := e.exchange(a)
		rb := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: b, cookie: ra.sessionCookie().Value})
		require.Equal(t, 201, rb.StatusCode)
		// bob signs in on device 1: alice's session there is replaced, not signed out.
		rc := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("bob", time.Hour), cookie: rb.sessionCookie().Value})
		require.Equal(t, 201, rc.StatusCode)
		// B on device 2 (bearer only), then signed out there.
		r2 := e.exchange(b)
		require.Equal(t, 201, r2.StatusCode, r2.body)
		require.Equal(t, 204, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r2.sessionCookie().Value}).StatusCode)
		r := e.exchange(a)
		assert.Equal(t, 201, r.StatusCode, "A was replaced, never signed out: %s", r.body)
	})
}

// TestASignOutEndsTheSessionThatContinuedIt: a request holds the device's
// session while another tab continues it with a refreshed token; then the
// first signs out. The sign-out ends the session that continued the one
// it signed out: the device is signed out, under any token.
func TestASignOutEndsTheSessionThatContinuedIt(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, s := e.signIn("ivy")
		loaded, proceed := make(chan struct{}), make(chan struct{})
		var signOutErr error
		var signedOutID string
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cur, ok := middleware.SessionFrom(r.Context())
			require.True(t, ok)
			signedOutID = cur.ID
			close(loaded)
			<-proceed
			signOutErr = e.auth.SignOut(r.Context())
			w.WriteHeader(http.StatusNoContent)
		}))
		done := make(chan int)
		go func() {
			done <- httptestRecorder(h, http.MethodGet, "/x", map[string]string{"X-Session-Token": s}).Code
		}()
		<-loaded
		// Another tab of the same device sends a refreshed token with the
		// device's cookie: the device continues.
		r := e.do(req{path: "/api/me", bearer: e.fake.Issue("ivy", time.Hour), cookie: s})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		next := r.sessionCookie()
		require.NotNil(t, next)
		close(proceed)
		require.Equal(t, http.StatusNoContent, <-done)
		require.NoError(t, signOutErr)

		after := e.do(req{path: "/auth/session", cookie: next.Value})
		if after.StatusCode == http.StatusOK {
			id := after.json(t)["session"].(map[string]any)["id"]
			assert.NotEqual(t, signedOutID, id, "the device signed out (SignOut returned nil) is still signed in under its id")
		}
		list, err := e.auth.Sessions(context.Background(), "plurality", "ivy")
		require.NoError(t, err)
		assert.Empty(t, list, "SignOut of the only device returned nil, yet a session of it lives")
	})
}

// continueChain signs user in with one token, then continues that device
// with n-1 more, each sent with the last session cookie. It returns the
// tokens, oldest first, and the device's last session cookie.
func continueChain(t *testing.T, e *env, user string, n int) (toks []string, cookie string) {
	t.Helper()
	toks = []string{e.fake.Issue(user, time.Hour)}
	r := e.exchange(toks[0])
	require.Equal(t, 201, r.StatusCode)
	cookie = r.sessionCookie().Value
	for range n - 1 {
		tok := e.fake.Issue(user, time.Hour)
		toks = append(toks, tok)
		r = e.do(req{method: http.MethodPost, path: "/auth/session", bearer: tok, cookie: cookie})
		require.Equal(t, 201, r.StatusCode, r.body)
		cookie = r.sessionCookie().Value
	}
	return toks, cookie
}
