package middleware_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// scaleSizes are the store sizes the cost must not depend on.
var scaleSizes = []int{1_000, 1_000_000}

// scaled is a Redis holding about total sessions, three of them user
// "listed"'s, with the cookie of one of those.
type scaled struct {
	e      *env
	cookie string
}

func newScaled(tb testing.TB, total int) *scaled {
	e := newEnv(tb, "redis")
	var cookie string
	for range 3 {
		_, cookie = e.signIn("listed")
	}
	fillOtherUsers(tb, e, cookie, total-3)
	return &scaled{e: e, cookie: cookie}
}

// steady serves one steady-state request in process: the session cookie,
// RequireSession, the user from the context.
func (s *scaled) steady(b *testing.B) {
	h := s.e.auth.Handler(s.e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := middleware.UserFrom(r.Context()); !ok {
			b.Fatal("no user")
		}
	})))
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: s.cookie})
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
		if w.status > 299 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// list lists user "listed"'s three sessions.
func (s *scaled) list(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		list, err := s.e.auth.Sessions(ctx, "plurality", "listed")
		if err != nil || len(list) != 3 {
			b.Fatalf("got %d sessions, %v", len(list), err)
		}
	}
}

// BenchmarkAtScale serves a steady-state request and lists one user's
// sessions with 1,000 and 1,000,000 sessions in Redis: neither may cost
// more with more sessions, because both read by key, never the keyspace.
func BenchmarkAtScale(b *testing.B) {
	for _, total := range scaleSizes {
		s := newScaled(b, total)
		b.Run(fmt.Sprintf("steady/sessions=%d", total), s.steady)
		b.Run(fmt.Sprintf("list/sessions=%d", total), s.list)
	}
}

// fillOtherUsers writes n sessions of n other users straight into Redis,
// pipelined: copies of the session of cookie under other keys, each in
// its own user's index, exactly as Mint lays them out.
func fillOtherUsers(tb testing.TB, e *env, cookie string, n int) {
	tb.Helper()
	conn, err := redis.DialURL(e.redis.URL)
	require.NoError(tb, err)
	defer conn.Close()
	value, err := redis.Bytes(conn.Do("GET", "sg:s:"+format.KeyOf(cookie)))
	require.NoError(tb, err)
	exp := time.Now().Add(time.Hour)
	const batch = 1000
	pending := 0
	flush := func() {
		require.NoError(tb, conn.Flush())
		for range pending {
			_, err := conn.Receive()
			require.NoError(tb, err)
		}
		pending = 0
	}
	for i := range n {
		var sel format.Selector
		binary.BigEndian.PutUint64(sel[:], uint64(i)+1)
		key := sel.Key()
		conn.Send("SET", "sg:s:"+key, value, "PX", time.Hour.Milliseconds())
		conn.Send("ZADD", fmt.Sprintf("sg:u:plurality:other-%d", i), exp.UnixMilli(), key)
		if pending += 2; pending >= 2*batch {
			flush()
		}
	}
	flush()
	size, err := redis.Int(conn.Do("DBSIZE"))
	require.NoError(tb, err)
	require.GreaterOrEqual(tb, size, 2*n)
}

// BenchmarkSteadyCredential serves a steady-state request in process on
// each store, for each way a client may carry its session: the cookie,
// the session header, or the frontend token alone (a bearer-only client:
// one read by the token's key).
func BenchmarkSteadyCredential(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		e := newEnv(b, kind)
		frontend, session := e.signIn("bench")
		h := e.auth.Handler(e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
		for _, how := range []string{"cookie", "header", "bearer"} {
			b.Run(kind+"/"+how, func(b *testing.B) {
				r := httptest.NewRequest("GET", "/", nil)
				switch how {
				case "cookie":
					r.AddCookie(&http.Cookie{Name: cookieName, Value: session})
				case "header":
					r.Header.Set("X-Session-Token", session)
				case "bearer":
					r.Header.Set("Authorization", "Bearer "+frontend)
				}
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.status = 0
					h.ServeHTTP(w, r)
					if w.status > 299 {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}

// instantProvider accepts every token at once, as its own user, with a
// credential id: a mint's cost without an upstream call's.
type instantProvider struct{}

func (instantProvider) Name() string { return "instant" }

func (instantProvider) Validate(_ context.Context, token string) (*provider.Identity, error) {
	return &provider.Identity{UserID: token, TokenID: token, Expiry: time.Now().Add(time.Hour)}, nil
}

// BenchmarkMint serves, in process, first requests: each carries a new
// frontend token as its bearer, which an in-process provider accepts at
// once, so that a request is the mint alone (the store's read, the
// mint's write) on memory and on a single Redis.
func BenchmarkMint(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			var st store.Store = store.NewMemory()
			if kind == "redis" {
				srv := storetest.Start(b)
				pool, err := redisstore.NewPool(srv.URL)
				require.NoError(b, err)
				b.Cleanup(func() { pool.Close() })
				st = redisstore.New(pool, redisstore.Options{})
			}
			auth := middleware.New(middleware.Config{Store: st, Provider: instantProvider{}, Secret: testSecret, Logger: discardLogger})
			h := auth.Handler(auth.RequireSession(ok(func(r *http.Request) string {
				u, _ := middleware.UserFrom(r.Context())
				return u.UserID
			})))
			prefix := fmt.Sprintf("mint%012d", time.Now().UnixNano()%1e12)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", fmt.Sprintf("Bearer %s%012dtoken", prefix, i))
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, r)
				if w.status > 299 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// BenchmarkBearerTokenSize serves a steady-state bearer-only request (the
// frontend token alone, Authorization: Bearer) in process on the memory
// store, with tokens of 1 KiB and 8 KiB (MaxTokenSize): a request hashes
// the whole token, so its cost grows with it, and must stay within 3× of
// the 1 KiB figure at 8 KiB.
func BenchmarkBearerTokenSize(b *testing.B) {
	e := newEnv(b, "memory", func(c *middleware.Config) { c.Logger = discardLogger })
	h := e.auth.Handler(e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for _, size := range []int{1 << 10, 8 << 10} {
		token := tokenOfSize(b, e, "bench", size)
		e.exchange(token)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status = 0
				h.ServeHTTP(w, r)
				if w.status > 299 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// tokenOfSize issues a token of user's, padded with a claim to size bytes
// or at most two fewer (base64 grows in steps), which the fake provider
// accepts.
func tokenOfSize(tb testing.TB, e *env, user string, size int) string {
	tb.Helper()
	for pad := size * 3 / 4; pad > 0; pad-- {
		token := e.fake.IssueWith(user, time.Hour, map[string]any{"pad": strings.Repeat("p", pad)})
		if len(token) <= size {
			return token
		}
	}
	tb.Fatalf("no token of %d bytes", size)
	return ""
}
