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

// gated: token "user.anything" valid for user; no TokenID (like para.New).
// Tokens in hold block until released.
type gated struct {
	mu      sync.Mutex
	hold    map[string]chan struct{}
	entered chan string
	tokenID bool
}

func (p *gated) Name() string { return "gated" }
func (p *gated) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	p.mu.Lock()
	ch := p.hold[token]
	p.mu.Unlock()
	if ch != nil {
		p.entered <- token
		<-ch
	}
	user, _, ok := strings.Cut(token, ".")
	if !ok {
		return nil, &provider.InvalidTokenError{Provider: "gated", Reason: "bad"}
	}
	id := &provider.Identity{UserID: user, Expiry: time.Now().Add(time.Hour)}
	if p.tokenID {
		id.TokenID = token
	}
	return id, nil
}

func newGatedEnv(t *testing.T, kind string, tokenID bool) (*env, *gated) {
	p := &gated{hold: map[string]chan struct{}{}, entered: make(chan string, 4), tokenID: tokenID}
	return newEnv(t, kind, func(c *middleware.Config) { c.Provider = p }), p
}

// A sign-out made while another tab's new token of the same user was
// being validated is not undone when that exchange replaces the session.
func TestReplacingNeverUndoesAConcurrentSignOut(t *testing.T) {
	for _, tokenID := range []bool{false, true} {
		stores(t, func(t *testing.T, kind string) {
			e, p := newGatedEnv(t, kind, tokenID)
			a := e.exchange("ann.A")
			require.Equal(t, http.StatusCreated, a.StatusCode, a.body)
			sa := a.sessionCookie().Value

			rel := make(chan struct{})
			p.mu.Lock()
			p.hold["ann.B"] = rel
			p.mu.Unlock()
			done := make(chan resp, 1)
			go func() { done <- e.do(req{path: "/api/me", cookie: sa, bearer: "ann.B"}) }()
			<-p.entered

			out := e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: sa})
			require.Equal(t, http.StatusNoContent, out.StatusCode, out.body)
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "ann.A"}).StatusCode)

			close(rel)
			assert.Equal(t, http.StatusOK, (<-done).StatusCode, "the other tab's new token signs in")
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "ann.A"}).StatusCode, "the signed-out token stays out (TokenID %v)", tokenID)
		})
	}
}

// A continued session keeps its public id; a session minted again from the
// first token gets its own: no two live sessions share an id.
func TestPublicIDsStayUnique(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e, _ := newGatedEnv(t, kind, false)
		a := e.exchange("ann.A")
		require.Equal(t, http.StatusCreated, a.StatusCode)
		b := e.do(req{path: "/api/me", cookie: a.sessionCookie().Value, bearer: "ann.B"})
		require.Equal(t, http.StatusOK, b.StatusCode, b.body)
		sb := b.sessionCookie().Value
		// A again, bearer only (another client / the first tab with no cookie)
		a2 := e.exchange("ann.A")
		require.Equal(t, http.StatusCreated, a2.StatusCode)
		list := e.do(req{path: "/auth/sessions", cookie: sb})
		ss := list.json(t)["sessions"].([]any)
		ids := map[string]int{}
		for _, s := range ss {
			ids[s.(map[string]any)["id"].(string)]++
		}
		require.Len(t, ss, 2)
		for id, n := range ids {
			assert.Equal(t, 1, n, "public id %s shared by %d live sessions", id, n)
		}
		// Revoke the other device (the one minted again from A) from B's.
		revoked := ss[0].(map[string]any)
		if revoked["current"] == true {
			revoked = ss[1].(map[string]any)
		}
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + revoked["id"].(string), cookie: sb}).StatusCode)
		after := e.do(req{path: "/auth/sessions", cookie: sb}).json(t)["sessions"]
		assert.Len(t, after, 1, "revoking one id ends one device")
	})
}

// Two tabs that share a cookie jar and send their own tokens: each token is
// validated once, however the session moves between them.
func TestTwoTabsAlternatingTokensValidateEachOnce(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	p := &gated{hold: map[string]chan struct{}{}, entered: make(chan string, 4)}
	wrap := providerFunc(func(ctx context.Context, tok string) (*provider.Identity, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return p.Validate(ctx, tok)
	})
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Provider = wrap })
	a := e.exchange("ann.A")
	require.Equal(t, http.StatusCreated, a.StatusCode)
	cookie := a.sessionCookie().Value
	codes := []int{}
	for i := 0; i < 10; i++ {
		tok := "ann.B"
		if i%2 == 1 {
			tok = "ann.A"
		}
		r := e.do(req{path: "/api/me", cookie: cookie, bearer: tok})
		codes = append(codes, r.StatusCode)
		if c := r.sessionCookie(); c != nil {
			cookie = c.Value
		}
	}
	assert.LessOrEqual(t, calls, 2)
}

type providerFunc func(ctx context.Context, tok string) (*provider.Identity, error)

func (f providerFunc) Name() string { return "gated" }
func (f providerFunc) Validate(ctx context.Context, tok string) (*provider.Identity, error) {
	return f(ctx, tok)
}

// Upstream expiries at and past the range's end never wrap a sign-out.
func TestExtremeExpiriesKeepTheSignOut(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		for _, exp := range []any{253402300799, 253402300799.999, 253402300770, 1e16, "9999999999", -1, 1.7976931348623157e308} {
			tok := e.fake.IssueWith("x", time.Hour, map[string]any{"exp": exp})
			r := e.exchange(tok)
			if r.StatusCode == http.StatusCreated {
				out := e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value})
				again := e.do(req{path: "/api/me", bearer: tok})
				require.Equal(t, http.StatusNoContent, out.StatusCode)
				assert.Equal(t, http.StatusUnauthorized, again.StatusCode, "exp %v", exp)
			}
		}
	})
}

// A session of another spelling of a credential, minted while its
// sign-out was on its way, ends with it.
func TestSignOutEndsATwinMintedMeanwhile(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e, _ := newSpellEnv(t, kind)
		entered, release := make(chan struct{}), make(chan struct{})
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			if err := e.auth.SignOut(r.Context()); err != nil {
				w.WriteHeader(503)
				return
			}
			w.WriteHeader(204)
		}))
		a := e.exchange("alice-1.first")
		require.Equal(t, http.StatusCreated, a.StatusCode)
		done := make(chan int, 1)
		go func() {
			rec := httptestRecorder(h, http.MethodDelete, "/", map[string]string{"X-Session-Token": a.sessionCookie().Value})
			done <- rec.Code
		}()
		<-entered
		b := e.exchange("alice-1.second")
		require.Equal(t, http.StatusCreated, b.StatusCode)
		close(release)
		assert.Equal(t, http.StatusNoContent, <-done)
		r := e.do(req{path: "/api/me", cookie: b.sessionCookie().Value})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	})
}
