package middleware_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
)

// filled counts the sessions fillUser wrote, for their keys.
var filled atomic.Int64

// fillUser gives user n more sessions, written straight through the
// store: copies of the session of cookie (its record names user) under
// new keys with new nonces (so new public ids), expiring first,
// in distinct milliseconds. It returns their public ids.
func fillUser(tb testing.TB, e *env, cookie, user string, n int) []string {
	tb.Helper()
	ctx := context.Background()
	got, err := e.store.Lookup(ctx, format.KeyOf(cookie))
	require.NoError(tb, err)
	require.True(tb, got.Live())
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Millisecond)
	ids := make([]string, n)
	first := filled.Add(int64(n)) - int64(n) // keys no other call wrote
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				var sel format.Selector
				copy(sel[:8], fmt.Sprintf("%-8.8s", user))
				binary.BigEndian.PutUint64(sel[8:], uint64(first)+uint64(i)+1)
				nonce := format.NewNonce()
				ids[i] = format.PublicID(sel.Key(), nonce)
				if err := e.store.Mint(ctx, backend.NewSession{Token: format.Token(sel, format.Validator{}), Nonce: nonce, Record: got.Record,
					Data: got.Data, Expires: exp.Add(time.Duration(i) * time.Millisecond), User: "plurality:" + user}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(tb, <-errs)
	return ids
}

// listed is one page of GET /auth/sessions as a client reads it.
type listed struct {
	status int
	ids    []string
	cur    []bool
	next   string
	link   string
	body   string
}

func (e *env) listPage(t *testing.T, cookie, query string) listed {
	t.Helper()
	r := e.do(req{path: "/auth/sessions" + query, cookie: cookie})
	l := listed{status: r.StatusCode, link: r.Header.Get("Link"), body: r.body}
	if r.StatusCode != http.StatusOK {
		return l
	}
	m := r.json(t)
	for _, s := range m["sessions"].([]any) {
		s := s.(map[string]any)
		l.ids = append(l.ids, s["id"].(string))
		l.cur = append(l.cur, s["current"].(bool))
	}
	if n, ok := m["next"]; ok {
		l.next = n.(string)
		require.NotEmpty(t, l.next, "next is left out, not empty, on the last page")
	}
	return l
}

// walkPages follows next from the first page, and returns the ids in
// order and how many were flagged current.
func (e *env) walkPages(t *testing.T, cookie, limit string) (ids []string, current, pages int) {
	t.Helper()
	cursor := ""
	for {
		q := "?" + url.Values{"limit": {limit}, "cursor": {cursor}}.Encode()
		l := e.listPage(t, cookie, q)
		require.Equal(t, http.StatusOK, l.status, l.body)
		pages++
		ids = append(ids, l.ids...)
		for _, c := range l.cur {
			if c {
				current++
			}
		}
		if l.next == "" {
			assert.Empty(t, l.link, "no Link on the last page")
			return ids, current, pages
		}
		assert.Equal(t, "</auth/sessions?"+url.Values{"cursor": {l.next}, "limit": {limit}}.Encode()+`>; rel="next"`, l.link)
		cursor = l.next
	}
}

// GET /auth/sessions answers pages: 50 by default, ?limit up to 200, and
// next (with a Link header) until the last; following next lists every
// session once, the current one flagged once; the cursor shows no store
// key.
func TestListPaging(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		var cookies []string
		for range 3 {
			_, c := e.signIn("pager")
			cookies = append(cookies, c)
		}
		fillUser(t, e, cookies[0], "pager", 117)
		_, other := e.signIn("someone-else")

		first := e.listPage(t, cookies[1], "")
		require.Equal(t, http.StatusOK, first.status, first.body)
		assert.Len(t, first.ids, middleware.DefaultPageSize, "the default page size")
		assert.ElementsMatch(t, []bool{false, false, true}, first.cur[:3], "latest expiry first: the signed-in sessions (whose tokens expire in the same second), then the older ones")
		require.NotEmpty(t, first.next)
		assert.Equal(t, "</auth/sessions?cursor="+first.next+`>; rel="next"`, first.link)
		for _, c := range cookies {
			assert.NotContains(t, first.next, format.KeyOf(c), "no store key in the cursor")
			assert.NotContains(t, first.body, format.KeyOf(c))
		}

		for _, limit := range []string{"1", "7", "50", "119", "200"} {
			ids, current, pages := e.walkPages(t, cookies[1], limit)
			assert.Len(t, ids, 120, "limit %s", limit)
			seen := map[string]bool{}
			for _, id := range ids {
				assert.False(t, seen[id], "limit %s: %s listed twice", limit, id)
				seen[id] = true
			}
			assert.Equal(t, 1, current, "limit %s: the current session is flagged once", limit)
			t.Logf("limit %s: %d pages", limit, pages)
		}
		all := e.listPage(t, cookies[1], "?limit=200")
		assert.Len(t, all.ids, 120)
		assert.Empty(t, all.next, "one page holds them all: no next")
		assert.Empty(t, all.link)
		assert.NotContains(t, all.body, `"next"`)

		mine := e.listPage(t, other, "")
		assert.Len(t, mine.ids, 1, "another user sees only their own")
		assert.Empty(t, mine.next)

		// Sessions keeps its whole list, newest first (by Created).
		whole, err := e.auth.Sessions(context.Background(), "plurality", "pager")
		require.NoError(t, err)
		assert.Len(t, whole, 120)
	})
}

// A bad limit or cursor is 400 invalid_request, never a 500, and reads
// nothing: a malformed, altered, truncated or another user's cursor, or
// one sealed with another secret.
func TestListPagingBadRequests(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, cookie := e.signIn("pager")
		fillUser(t, e, cookie, "pager", 5)
		_, other := e.signIn("other")
		fillUser(t, e, other, "other", 5)
		next := e.listPage(t, cookie, "?limit=2").next
		require.NotEmpty(t, next)
		othersNext := e.listPage(t, other, "?limit=2").next
		require.NotEmpty(t, othersNext)

		flipped := []byte(next)
		flipped[len(flipped)/2] ^= 1
		if flipped[len(flipped)/2] == '-' || flipped[len(flipped)/2] == '_' {
			flipped[len(flipped)/2] = 'A'
		}
		sealed := newEnv(t, "memory", func(c *middleware.Config) { c.Secret = "another-secret-0123456789abcdef" })
		_, foreign := sealed.signIn("pager")
		fillUser(t, sealed, foreign, "pager", 5)
		foreignNext := sealed.listPage(t, foreign, "?limit=2").next
		require.NotEmpty(t, foreignNext)

		for name, q := range map[string]string{
			"limit 0":              "?limit=0",
			"limit -1":             "?limit=-1",
			"limit 201":            "?limit=201",
			"limit huge":           "?limit=99999999999999999999",
			"limit not a number":   "?limit=ten",
			"limit 1.5":            "?limit=1.5",
			"limit empty":          "?limit=",
			"limit with a sign":    "?limit=%2B5",
			"limit with a zero":    "?limit=05",
			"limit twice":          "?limit=1&limit=2",
			"cursor twice":         "?cursor=" + next + "&cursor=" + next,
			"cursor garbage":       "?cursor=abc",
			"cursor not base64":    "?cursor=" + url.QueryEscape("!!!!****"),
			"cursor padded":        "?cursor=" + next + "==",
			"cursor altered":       "?cursor=" + string(flipped),
			"cursor truncated":     "?cursor=" + next[:len(next)-4],
			"cursor extended":      "?cursor=" + next + "AAAA",
			"cursor too long":      "?cursor=" + strings.Repeat("A", 4096),
			"another user's":       "?cursor=" + othersNext,
			"another secret's":     "?cursor=" + foreignNext,
			"a store key":          "?cursor=" + format.KeyOf(cookie),
			"valid limit, bad cur": "?limit=5&cursor=" + string(flipped),
		} {
			r := e.do(req{path: "/auth/sessions" + q, cookie: cookie})
			assert.Equal(t, http.StatusBadRequest, r.StatusCode, "%s: %s", name, r.body)
			assert.Equal(t, "invalid_request", r.json(t)["error"], name)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"), name)
		}
		ok := e.listPage(t, cookie, "?cursor=&limit=200")
		assert.Equal(t, http.StatusOK, ok.status, "an empty cursor is the first page")
		assert.Len(t, ok.ids, 6)
		ok = e.listPage(t, cookie, "?cursor="+next)
		assert.Equal(t, http.StatusOK, ok.status, "the cursor is good for the next page at any size")
		assert.Len(t, ok.ids, 4)

		// The Go API says the same.
		ctx := context.Background()
		for _, limit := range []int{-1, middleware.MaxPageSize + 1} {
			_, err := e.auth.SessionsPage(ctx, "plurality", "pager", middleware.PageRequest{Limit: limit})
			assert.ErrorIs(t, err, middleware.ErrInvalidLimit, "limit %d", limit)
		}
		_, err := e.auth.SessionsPage(ctx, "plurality", "pager", middleware.PageRequest{Cursor: othersNext})
		assert.ErrorIs(t, err, middleware.ErrInvalidCursor)
		page, err := e.auth.SessionsPage(ctx, "plurality", "pager", middleware.PageRequest{})
		require.NoError(t, err)
		assert.Len(t, page.Sessions, 6, "limit 0: the default")
		assert.Empty(t, page.Next)
	})
}

// A walk of every page while the user signs in and out elsewhere lists no
// session twice, and every session that lived throughout.
func TestListPagingUnderChurn(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, cookie := e.signIn("churner")
		stable := fillUser(t, e, cookie, "churner", 60)
		got, err := e.store.Lookup(context.Background(), format.KeyOf(cookie))
		require.NoError(t, err)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			base := time.Now().Add(30 * time.Minute)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var sel format.Selector
				copy(sel[:], "churn")
				binary.BigEndian.PutUint64(sel[8:], uint64(i)+1)
				// Among the stable sessions' expiries, some in the same ms.
				exp := base.Add(time.Duration(i%70) * time.Millisecond)
				if err := e.store.Mint(ctx, backend.NewSession{Token: format.Token(sel, format.Validator{}), Nonce: format.NewNonce(),
					Record: got.Record, Expires: exp, User: "plurality:churner"}); err != nil {
					t.Errorf("mint: %v", err)
					return
				}
				if i > 0 { // end the one before: at most one churn session lives
					var prev format.Selector
					copy(prev[:], "churn")
					binary.BigEndian.PutUint64(prev[8:], uint64(i))
					if err := e.store.End(ctx, backend.Ending{Key: prev.Key(), User: "plurality:churner", Until: base}); err != nil {
						t.Errorf("end: %v", err)
						return
					}
				}
			}
		}()
		for round := range 4 {
			ids, current, pages := e.walkPages(t, cookie, "4")
			seen := map[string]int{}
			for _, id := range ids {
				seen[id]++
			}
			for id, n := range seen {
				assert.Equal(t, 1, n, "round %d: %s listed once", round, id)
			}
			for _, id := range stable {
				assert.Equal(t, 1, seen[id], "round %d: a session that lived throughout is listed", round)
			}
			assert.Equal(t, 1, current, "round %d", round)
			t.Logf("round %d: %d pages, %d sessions, %d of them minted during the walks", round, pages, len(ids), len(ids)-len(stable)-1)
		}
		close(stop)
		wg.Wait()
	})
}

// The back-office listing pages the same way; a Revoker's SessionsPage
// too.
func TestAdminListPaging(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, cookie := e.signIn("pager")
		fillUser(t, e, cookie, "pager", 9)
		admin := e.auth.AdminRoutes("/admin", func(*http.Request) error { return nil })
		get := func(q string) *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/admin/users/plurality/pager/sessions"+q, nil))
			return w
		}
		var ids []string
		cursor := ""
		for {
			w := get("?limit=3&cursor=" + cursor)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			var raw struct {
				Sessions []struct {
					ID      string `json:"id"`
					Current bool   `json:"current"`
				} `json:"sessions"`
				Next string `json:"next"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
			for _, s := range raw.Sessions {
				ids = append(ids, s.ID)
				assert.False(t, s.Current, "nothing is current in the back office")
			}
			if raw.Next == "" {
				assert.Empty(t, w.Header().Get("Link"))
				break
			}
			assert.Equal(t, "</admin/users/plurality/pager/sessions?cursor="+raw.Next+`&limit=3>; rel="next"`, w.Header().Get("Link"))
			cursor = raw.Next
		}
		assert.Len(t, ids, 10)
		w := get("?cursor=forged")
		assert.Equal(t, http.StatusBadRequest, w.Code)
		assert.Contains(t, w.Body.String(), `"invalid_request"`)
		w = get("?limit=500")
		assert.Equal(t, http.StatusBadRequest, w.Code)

		rv := middleware.NewRevoker(middleware.Config{Store: e.store, Secret: testSecret})
		page, err := rv.SessionsPage(context.Background(), "plurality", "pager", middleware.PageRequest{Limit: 4})
		require.NoError(t, err)
		assert.Len(t, page.Sessions, 4)
		require.NotEmpty(t, page.Next)
		rest, err := e.auth.SessionsPage(context.Background(), "plurality", "pager", middleware.PageRequest{Limit: 100, Cursor: page.Next})
		require.NoError(t, err, "processes that share the store and the secret read each other's cursors")
		assert.Len(t, rest.Sessions, 6)
		_, err = rv.SessionsPage(context.Background(), "plurality", "pager", middleware.PageRequest{Cursor: "x"})
		assert.True(t, errors.Is(err, middleware.ErrInvalidCursor))
	})
}

// Signing out everywhere ends every session of a user with more than the
// engine's internal page (500), walking its pages; the others ends all
// but this one.
func TestSignOutAllEndsEveryPage(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, cookie := e.signIn("many")
		_, keep := e.signIn("many")
		fillUser(t, e, cookie, "many", 1100)
		r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: keep})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		assert.EqualValues(t, 1101, r.json(t)["signedOut"])
		left := e.listPage(t, keep, "?limit=200")
		assert.Len(t, left.ids, 1, "only this one is left")

		fillUser(t, e, keep, "many", 700)
		r = e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: keep})
		require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
		n, err := e.auth.Sessions(context.Background(), "plurality", "many")
		require.NoError(t, err)
		assert.Empty(t, n, "every page ended")
	})
}

// BenchmarkListPage serves GET /auth/sessions?limit=10 in process, to a
// user with 10 and with 10,000 sessions, on each store: a page costs the
// same. "all" is Auth.Sessions, the whole list, for comparison.
func BenchmarkListPage(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		for _, n := range []int{10, 10_000} {
			e := newEnv(b, kind)
			_, cookie := e.signIn("bench")
			fillUser(b, e, cookie, "bench", n-1)
			h := e.auth.Routes("/auth")
			r := httptest.NewRequest(http.MethodGet, "/auth/sessions?limit=10", nil)
			r.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
			b.Run(fmt.Sprintf("%s/sessions=%d/page=10", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				var size int
				for b.Loop() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
					size = w.Body.Len()
				}
				b.ReportMetric(float64(size), "bytes/answer")
			})
			b.Run(fmt.Sprintf("%s/sessions=%d/all", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					list, err := e.auth.Sessions(context.Background(), "plurality", "bench")
					if err != nil || len(list) != n {
						b.Fatalf("%d sessions, %v", len(list), err)
					}
				}
			})
		}
	}
}
