package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
)

// rvnOdd renames per user id: names an identity's provider with odd bytes.
func rvnOdd(p provider.Provider, names map[string][2]string) provider.Provider {
	return editIdentity{p, func(id *provider.Identity) {
		if n, ok := names[id.UserID]; ok {
			id.Provider, id.UserID = n[0], n[1]
		}
	}}
}

// A live session carrying a new token whose identity names a ':' provider.
func TestReviewNContinuationColon(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Provider = rvmRename(c.Provider) })
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u3", time.Hour)})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	s := r.sessionCookie().Value
	bad := e.fake.Issue("u1", time.Hour)
	for _, q := range []req{
		{method: http.MethodPost, path: "/auth/session", bearer: bad, cookie: s},
		{path: "/api/me", bearer: bad, cookie: s},
	} {
		r = e.do(q)
		t.Logf("%s %s cookie+':' bearer: %d %s set-cookie=%q", q.method, q.path, r.StatusCode, r.body, r.Header.Values("Set-Cookie"))
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode, "the live session stays live")
}

// Review N: the ':' refusal is an invalid_token, remembered like the
// provider's own rejections (one upstream call for three sends), and
// told at WARN.
func TestReviewNColonNegativeCache(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Provider = rvmRename(c.Provider) })
	bad := e.fake.Issue("u1", time.Hour)
	junk := e.fake.Issue("gone", time.Hour)
	e.fake.Revoke(junk)
	c0 := e.fake.Calls()
	for range 3 {
		e.do(req{path: "/api/me", bearer: junk})
	}
	c1 := e.fake.Calls()
	for range 3 {
		r := e.do(req{path: "/api/me", bearer: bad})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}
	c2 := e.fake.Calls()
	t.Logf("upstream calls for 3 sends: provider-rejected %d, ':'-refused %d", c1-c0, c2-c1)
	assert.EqualValues(t, 1, c1-c0, "provider rejection cached")
	assert.EqualValues(t, 1, c2-c1, "':' refusal cached as provider.Provider doc says for invalid tokens")
	assert.Equal(t, 1, strings.Count(e.logs.String(), "whose name holds a ':'"), "the refusal is told once, at WARN")
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u2", time.Hour)})
	assert.Equal(t, http.StatusCreated, r.StatusCode, r.body)
}

// Revoker/Auth calls with ':' names never reach another user's sessions.
func TestReviewNRevokerColon(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Provider = rvmRename(c.Provider) })
	var ss []string
	for range 2 {
		r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u2", time.Hour)})
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		ss = append(ss, r.sessionCookie().Value)
	}
	rv := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret, Now: e.clock.Now})
	require.NoError(t, e.auth.Check(context.Background()))
	ctx := context.Background()
	got, err := rv.Sessions(ctx, "a:b", "c")
	require.NoError(t, err)
	assert.Empty(t, got)
	p, err := rv.SessionsPage(ctx, "a", "b:c", middleware.PageRequest{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, p.Next)
	p2, err := rv.SessionsPage(ctx, "a:b", "c", middleware.PageRequest{Limit: 1, Cursor: p.Next})
	t.Logf("foreign cursor on the colliding index: %v, %d sessions", err, len(p2.Sessions))
	assert.Empty(t, p2.Sessions)
	n, err := rv.RevokeUser(ctx, "a:b", "c")
	assert.NoError(t, err)
	assert.Zero(t, n)
	n, err = e.auth.RevokeUser(ctx, "a:b", "c")
	assert.NoError(t, err)
	assert.Zero(t, n)
	for _, s := range ss {
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode)
	}
	n, err = rv.RevokeUser(ctx, "a", "b:c")
	assert.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, s := range ss {
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: s}).StatusCode)
	}
}

// Identities whose provider holds odd bytes: each signs in, each is its own
// user, and MaxSessionsPerUser 1 never ends another's session.
func TestReviewNOddProviders(t *testing.T) {
	long := string(make([]byte, 64<<10))
	names := map[string][2]string{
		"e": {"", "x"}, "nul": {"p\x00", "x"}, "nul2": {"p", "\x00x"}, "pipe": {"plurality|para", "x"},
		"conf": {"plurаlity", "x"}, // Cyrillic a
		"long": {long, "x"}, "brace": {"}p", "x"}, "brace2": {"=}p", "x"}, "nl": {"p\n", "x"}, "inv": {"\xff", "x"},
	}
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.Provider = rvnOdd(c.Provider, names)
			c.MaxSessionsPerUser = 1
		})
		cookies := map[string]string{}
		for u := range names {
			r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue(u, time.Hour)})
			if !assert.Less(t, r.StatusCode, 500, "%s: %s", u, r.body) {
				continue
			}
			t.Logf("%s: %d", u, r.StatusCode)
			if r.StatusCode == http.StatusCreated {
				cookies[u] = r.sessionCookie().Value
			}
		}
		for u, s := range cookies {
			r := e.do(req{path: "/auth/sessions", cookie: s})
			assert.Equal(t, http.StatusOK, r.StatusCode, "%s: %s", u, r.body)
			assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode, u)
		}
	})
}

// Resends of a ':'-refused token do not keep a valid token of the same
// client out.
func TestReviewNColonGuesses(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) {
		c.Provider = rvmRename(c.Provider)
		c.GuessBurst, c.GuessInterval = 2, time.Hour
	})
	bad := e.fake.Issue("u1", time.Hour)
	for i := range 6 {
		r := e.do(req{path: "/api/me", bearer: bad})
		t.Logf("resend %d: %d %s", i, r.StatusCode, r.body)
	}
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u2", time.Hour)})
	t.Logf("valid token after: %d %s", r.StatusCode, r.body)
	assert.Equal(t, http.StatusCreated, r.StatusCode)
}

func TestReviewNColonConcurrent(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) {
		c.Provider = rvmRename(c.Provider)
		c.MaxSessionsPerUser = 1
	})
	bad, good := e.fake.Issue("u1", time.Hour), e.fake.Issue("u2", time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("u3", time.Hour)})
	require.Equal(t, http.StatusCreated, r.StatusCode)
	s := r.sessionCookie().Value
	codes := make(chan int, 40)
	done := make(chan struct{})
	for i := range 40 {
		go func() {
			defer func() { done <- struct{}{} }()
			q := req{path: "/api/me", bearer: bad}
			switch i % 3 {
			case 1:
				q.bearer = good
			case 2:
				q.cookie = s
			}
			codes <- e.do(q).StatusCode*10 + i%3
		}()
	}
	for range 40 {
		<-done
	}
	close(codes)
	for c := range codes {
		want := map[int]int{0: 401, 1: 200, 2: 401}[c%10]
		assert.Equal(t, want, c/10, "kind %d", c%10)
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode)
}
