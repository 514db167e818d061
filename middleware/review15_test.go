package middleware_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
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
	"github.com/sessiongate/sessiongate/store"
)

// countingStore counts Lookups.
type countingStore struct {
	store.Store
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, key string) (format.Stored, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, key)
}

// An old session token must not open the session re-minted at the same
// key after the first idled out, even though the record cache held the
// old token for that key.
func TestReview15StaleTokenAfterIdleRemint(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.IdleTimeout = 10 * time.Minute })
		front := e.fake.Issue("idler", 2*time.Hour)
		r := e.do(req{path: "/api/me", bearer: front})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		require.NotNil(t, r.sessionCookie(), "the mint hands the token out")
		t1 := r.sessionCookie().Value
		r = e.do(req{path: "/api/me", bearer: front})
		require.Equal(t, http.StatusOK, r.StatusCode)
		assert.Nil(t, r.sessionCookie(), "a bearer-only steady request gets no cookie")
		assert.Empty(t, r.Header.Get("X-Session-Token"))
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: t1}).StatusCode)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: t1}).StatusCode)

		e.clock.Advance(11 * time.Minute)
		r = e.do(req{path: "/api/me", bearer: front})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		require.NotNil(t, r.sessionCookie(), "a re-mint hands the new token out")
		t2 := r.sessionCookie().Value
		require.NotEqual(t, t1, t2)
		assert.Equal(t, format.KeyOf(t1), format.KeyOf(t2), "same key")
		for i := 0; i < 3; i++ {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: t1}).StatusCode)
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: t1}).StatusCode)
			assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: t2}).StatusCode)
			assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		}
		// old cookie + the frontend token: the token's (new) session.
		r = e.do(req{path: "/auth/session", cookie: t1, bearer: front})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		// sign-out then the stale tokens
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: t2}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: t2}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: t1}).StatusCode)
	})
}

// Malformed bearer tokens never reach the store or the provider, before
// or after a good token's selector became known.
func TestReview15MalformedBearerNeverReadsStore(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		var cs *countingStore
		e := newEnv(t, kind, func(c *middleware.Config) {
			cs = &countingStore{Store: c.Store}
			c.Store = cs
			c.GuessBurst = 1000
		})
		front := e.fake.Issue("known", time.Hour)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: front}).StatusCode)
		calls := e.fake.Calls()
		bad := []string{
			"a b", strings.Repeat("a", 8193), "tök", "../x", "a\x01b", front + "\x7f",
			".", "/", front + "/..", "é" + front,
			"\u00a0" + front, front + "\u2003", // Unicode spaces are not RFC 9110's whitespace
		}
		for _, b := range bad {
			before := cs.lookups.Load()
			hr, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/me", nil)
			hr.Header["Authorization"] = []string{"Bearer " + b}
			res, err := e.srv.Client().Do(hr)
			if err != nil {
				t.Logf("%q: client refused: %v", b, err)
				continue
			}
			res.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "%q", b)
			assert.Equal(t, before, cs.lookups.Load(), "%q read the store", b)
		}
		assert.Equal(t, calls, e.fake.Calls(), "no upstream call")
	})
}

// Hand-out rule.
func TestReview15HandOut(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		front := e.fake.Issue("hander", time.Hour)
		// concurrent first requests
		var wg sync.WaitGroup
		toks := make([]string, 12)
		codes := make([]int, 12)
		for i := range toks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do(req{path: "/api/me", bearer: front})
				codes[i] = r.StatusCode
				if c := r.sessionCookie(); c != nil {
					toks[i] = c.Value
					assert.Equal(t, c.Value, r.Header.Get("X-Session-Token"))
					assert.Contains(t, r.Header.Get("Cache-Control"), "no-store")
					assert.Contains(t, varyNames(r.Response), "Authorization")
				}
			}()
		}
		wg.Wait()
		tok := ""
		handed := 0
		for i := range toks {
			assert.Equal(t, http.StatusOK, codes[i])
			if toks[i] != "" {
				handed++
				if tok == "" {
					tok = toks[i]
				}
				assert.Equal(t, tok, toks[i])
			}
		}
		t.Logf("%d of 12 concurrent first requests got the token", handed)
		require.NotEmpty(t, tok)
		assert.EqualValues(t, 1, e.fake.Calls())
		// POST hands it out always
		r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: front})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		require.NotNil(t, r.sessionCookie())
		assert.Equal(t, tok, r.sessionCookie().Value)
		assert.Equal(t, tok, r.Header.Get("X-Session-Token"))
		assert.Contains(t, r.Header.Get("Cache-Control"), "no-store")
		assert.Contains(t, varyNames(r.Response), "Authorization", "Vary on a response that sets a cookie")
		// cookie + bearer same session: reused, nothing handed out
		r = e.do(req{path: "/api/me", bearer: front, cookie: tok})
		require.Equal(t, http.StatusOK, r.StatusCode)
		assert.Nil(t, r.sessionCookie())
		// a dead cookie + bearer: handed out
		_, other := e.signIn("hander")
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: other}).StatusCode)
		r = e.do(req{path: "/api/me", bearer: front, cookie: other})
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.NotNil(t, r.sessionCookie())
		assert.Equal(t, tok, r.sessionCookie().Value)
		// another user's live cookie + bearer
		_, foreign := e.signIn("stranger")
		r = e.do(req{path: "/auth/session", bearer: front, cookie: foreign})
		require.Equal(t, http.StatusOK, r.StatusCode)
		assert.Equal(t, "hander", r.json(t)["user"].(map[string]any)["id"])
		require.NotNil(t, r.sessionCookie())
		assert.Equal(t, tok, r.sessionCookie().Value)
		// foreign session still live (replaced? it's another user's)
		t.Logf("stranger's cookie after: %d", e.do(req{path: "/api/me", cookie: foreign}).StatusCode)
	})
}

// scs values through the lazy path.
func TestReview15Values(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, tok := e.signIn("valued")
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			switch r.URL.Query().Get("op") {
			case "put-many":
				var wg sync.WaitGroup
				for i := range 8 {
					wg.Add(1)
					go func() { defer wg.Done(); e.sm.Put(ctx, fmt.Sprint("k", i), i) }()
				}
				wg.Wait()
			case "get":
				fmt.Fprint(w, e.sm.Status(ctx), " ", e.sm.Keys(ctx))
			case "remove":
				e.sm.Remove(ctx, "k3")
			case "clear":
				e.sm.Clear(ctx)
			case "renew":
				fmt.Fprint(w, e.sm.RenewToken(ctx))
			case "destroy":
				fmt.Fprint(w, e.sm.Destroy(ctx))
			case "merge":
				fmt.Fprint(w, e.sm.MergeSession(ctx, r.URL.Query().Get("tok")))
			case "late":
				done := make(chan struct{})
				go func() { <-done; e.sm.Put(ctx, "late", 1); _ = e.sm.GetString(ctx, "k1") }()
				close(done)
			}
		}))
		call := func(op string, extra ...string) (int, string) {
			q := "/?op=" + op
			if len(extra) > 0 {
				q += "&tok=" + url.QueryEscape(extra[0])
			}
			w := httptestRecorder(h, http.MethodGet, q, map[string]string{"X-Session-Token": tok})
			return w.Code, w.Body.String()
		}
		_, out := call("get")
		t.Logf("fresh: %s", out)
		call("put-many")
		_, out = call("get")
		assert.Equal(t, "0 [k0 k1 k2 k3 k4 k5 k6 k7]", out)
		call("remove")
		_, out = call("get")
		assert.Equal(t, "0 [k0 k1 k2 k4 k5 k6 k7]", out)
		for _, op := range []string{"renew", "destroy", "late"} {
			c, out := call(op)
			t.Logf("%s: %d %q", op, c, out)
		}
		_, other := e.signIn("valued")
		c, out := call("merge", other)
		t.Logf("merge: %d %q", c, out)
		_, out = call("get")
		t.Logf("after: %s", out)
		call("clear")
		_, out = call("get")
		assert.Equal(t, "0 []", out)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: tok}).StatusCode)
	})
}

// A walk over sessions that share one expiry, ending the page's last
// session (the cursor's own entry) between pages: each of the others is
// listed once.
func TestReview15PagingTiesCursorEntryEnded(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, cookie := e.signIn("tied")
		got, err := e.store.Lookup(context.Background(), format.KeyOf(cookie))
		require.NoError(t, err)
		exp := time.Now().Add(30 * time.Minute).Truncate(time.Millisecond)
		ids := map[string]bool{}
		for i := range 40 {
			var sel format.Selector
			copy(sel[:8], "tiedtied")
			binary.BigEndian.PutUint64(sel[8:], uint64(i*7919%1000))
			nonce := format.NewNonce()
			ids[format.PublicID(sel.Key(), nonce)] = true
			require.NoError(t, e.store.Mint(context.Background(), backend.NewSession{Token: format.Token(sel, format.Validator{}), Nonce: nonce,
				Record: got.Record, Data: got.Data, Expires: exp, User: "plurality:tied"}))
		}
		for _, limit := range []string{"1", "3"} {
			seen := map[string]int{}
			ended := map[string]bool{}
			cursor := ""
			for pages := 0; pages < 200; pages++ {
				l := e.listPage(t, cookie, "?"+url.Values{"limit": {limit}, "cursor": {cursor}}.Encode())
				require.Equal(t, http.StatusOK, l.status, l.body)
				for _, id := range l.ids {
					seen[id]++
				}
				if l.next == "" {
					break
				}
				if len(l.ids) > 0 && pages%2 == 0 {
					last := l.ids[len(l.ids)-1]
					if ids[last] {
						r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + last, cookie: cookie})
						require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
						ended[last] = true
					}
				}
				cursor = l.next
			}
			for id := range ids {
				if !ended[id] && !strings.HasPrefix(limit, "x") {
					assert.Equal(t, 1, seen[id], "limit %s: %s", limit, id)
				}
			}
			for id, n := range seen {
				assert.LessOrEqual(t, n, 1, "limit %s: %s twice", limit, id)
			}
			for id := range ended {
				delete(ids, id)
			}
		}
	})
}

// Page cost in Redis commands for 10 vs 2000 sessions; odd limits.
func TestReview15PageCostAndLimits(t *testing.T) {
	e := newEnv(t, "redis")
	_, small := e.signIn("small")
	fillUser(t, e, small, "small", 9)
	_, big := e.signIn("big")
	fillUser(t, e, big, "big", 1999)
	cost := func(cookie, q string) map[string]int {
		e.listPage(t, cookie, q) // warm
		before := e.commandCalls()
		l := e.listPage(t, cookie, q)
		require.Equal(t, http.StatusOK, l.status, l.body)
		after := e.commandCalls()
		d := map[string]int{}
		for k, v := range after {
			if v != before[k] {
				d[k] = v - before[k]
			}
		}
		return d
	}
	cs, cb := cost(small, "?limit=5"), cost(big, "?limit=5")
	t.Logf("small %v big %v", cs, cb)
	assert.Equal(t, cs, cb)
	for _, lim := range []string{"+5", "05", " 5", "1e9", "5 ", "0x5", "\u0665"} {
		r := e.do(req{path: "/auth/sessions?limit=" + url.QueryEscape(lim), cookie: small})
		t.Logf("limit %q: %d", lim, r.StatusCode)
	}
}

// Steady bearer-only responses under a custom TokenHeader: before the
// hand-out rule each carried Set-Cookie + no-store + Vary; now?
func TestReview15CustomHeaderSteadyCacheability(t *testing.T) {
	e := newEnv(t, "memory", func(c *middleware.Config) { c.TokenHeader = "X-Id-Token" })
	front := e.fake.Issue("cachey", time.Hour)
	r1 := e.do(req{path: "/public", hdr: map[string]string{"X-Id-Token": front}})
	require.Equal(t, "hello cachey", r1.body)
	t.Logf("mint:   Cache-Control=%q Vary=%v Set-Cookie=%v", r1.Header.Get("Cache-Control"), varyNames(r1.Response), r1.sessionCookie() != nil)
	r2 := e.do(req{path: "/public", hdr: map[string]string{"X-Id-Token": front}})
	require.Equal(t, "hello cachey", r2.body)
	t.Logf("steady: Cache-Control=%q Vary=%v Set-Cookie=%v", r2.Header.Get("Cache-Control"), varyNames(r2.Response), r2.sessionCookie() != nil)
	assert.Contains(t, varyNames(r2.Response), "X-Id-Token", "a personalised answer keyed by a custom header must vary on it (or be no-store)")
	// raw handler: bytes net/http would refuse
	for _, b := range []string{"a\x01b", front + "\x7f", front + "\x00"} {
		w := httptestRecorder(e.auth.Handler(http.NotFoundHandler()), http.MethodGet, "/", map[string]string{"X-Id-Token": b})
		assert.Equal(t, http.StatusUnauthorized, w.Code, "%q", b)
	}
}
