package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// The Redis store's connections under load and faults, through the
// middleware.

// conns counts a pool's open connections and records the commands they
// send, with their context's deadline.
type conns struct {
	open, peak atomic.Int64
	mu         sync.Mutex
	deadlines  []time.Time // of each command sent; zero: none
}

type countedConn struct {
	redis.Conn
	c      *conns
	closed atomic.Bool
}

func (cc *countedConn) Close() error {
	if !cc.closed.Swap(true) {
		cc.c.open.Add(-1)
	}
	return cc.Conn.Close()
}

func (cc *countedConn) Do(cmd string, args ...any) (any, error) {
	cc.c.sent(cmd, context.Background())
	return cc.Conn.Do(cmd, args...)
}

func (cc *countedConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	cc.c.sent(cmd, ctx)
	return redis.DoContext(cc.Conn, ctx, cmd, args...)
}

func (cc *countedConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(cc.Conn, ctx)
}

func (c *conns) sent(cmd string, ctx context.Context) {
	if cmd == "" {
		return // the pool's flush when a connection goes back
	}
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.deadlines = append(c.deadlines, d)
	c.mu.Unlock()
}

// since returns the deadlines of the commands sent after the first n.
func (c *conns) since(n int) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.deadlines[n:]...)
}

func (c *conns) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deadlines)
}

// countedStore returns a store on srv through NewRedisPool's pool, with
// MaxActive and Wait set, whose connections c counts.
func countedStore(t *testing.T, srv *storetest.Server, maxActive int, wait bool, opts redisstore.Options) (store.Store, *conns) {
	t.Helper()
	pool, err := redisstore.NewPool(srv.URL)
	require.NoError(t, err)
	t.Cleanup(func() { pool.Close() })
	pool.MaxActive, pool.Wait = maxActive, wait
	c := &conns{}
	dial := pool.DialContext
	pool.DialContext = func(ctx context.Context) (redis.Conn, error) {
		conn, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		n := c.open.Add(1)
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
		return &countedConn{Conn: conn, c: c}, nil
	}
	return redisstore.New(pool, opts), c
}

// newEnvOnStore is newEnv whose middleware keeps its sessions in st, on
// srv.
func newEnvOnStore(t *testing.T, srv *storetest.Server, st store.Store, mods ...func(*middleware.Config)) *env {
	t.Helper()
	use := func(c *middleware.Config) { c.Store = st }
	return newEnvSharing(t, "redis", &env{redis: srv}, append([]func(*middleware.Config){use}, mods...)...)
}

// A session read took two pooled connections at once, so MaxActive 1
// answered even one bearer-only request 503 "connection pool exhausted".
// Every route works on a pool of one connection.
func TestEveryRouteWorksOnOneConnection(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	st, c := countedStore(t, srv, 1, false, redisstore.Options{})
	e := newEnvOnStore(t, srv, st)
	frontend := e.fake.Issue("one", time.Hour)

	r := e.do(req{path: "/api/me", bearer: frontend})
	require.Equal(t, http.StatusOK, r.StatusCode, "bearer only, first request: %s", r.body)
	session := r.Header.Get("X-Session-Token")
	for _, q := range []req{
		{path: "/api/me", bearer: frontend},
		{path: "/api/me", header: session},
		{method: http.MethodPost, path: "/auth/session", bearer: frontend},
		{path: "/auth/session", header: session},
		{path: "/auth/sessions", header: session},
		{method: http.MethodDelete, path: "/auth/sessions/others", header: session},
	} {
		r := e.do(q)
		assert.Equal(t, http.StatusOK, r.StatusCode, "%s %s: %s", q.method, q.path, r.body)
	}
	assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", header: session}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: frontend}).StatusCode, "signed out")
	assert.EqualValues(t, 1, c.peak.Load())
	assert.NotContains(t, e.logs.String(), "unavailable")
}

// With MaxActive 4, Wait and 8 concurrent clients, 120 requests
// succeeded and then every client hung: each held one connection and
// waited, without a deadline, for a second. A pool smaller than the
// number of clients serves them in turn (Wait) or answers 503 at once,
// never hangs, and never opens more than MaxActive connections.
func TestSmallPoolUnderLoad(t *testing.T) {
	t.Parallel()
	const clients, perClient = 8, 40
	for _, tc := range []struct {
		name      string
		maxActive int
		wait      bool
	}{
		{"MaxActive 4, Wait", 4, true},
		{"MaxActive 2, Wait", 2, true},
		{"MaxActive 1, no Wait", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := storetest.Start(t)
			// A deadline long enough that waiting for a connection never
			// runs out on a slow machine: every request must be served.
			st, c := countedStore(t, srv, tc.maxActive, tc.wait, redisstore.Options{Timeout: 15 * time.Second})
			e := newEnvOnStore(t, srv, st)
			statuses := make([][]int, clients)
			run := func() error {
				var wg sync.WaitGroup
				for i := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						frontend := e.fake.Issue(fmt.Sprintf("load-%d", i), time.Hour)
						session := ""
						for j := range perClient {
							q := req{path: "/api/me", bearer: frontend}
							if j%2 == 1 && session != "" {
								q = req{path: "/api/me", header: session}
							}
							ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
							q.ctx = ctx
							r, err := e.try(q)
							cancel()
							status := 0 // no answer: hung past 30 s
							if err == nil {
								status = r.StatusCode
								if s := r.Header.Get("X-Session-Token"); s != "" {
									session = s
								}
							}
							statuses[i] = append(statuses[i], status)
						}
					}()
				}
				wg.Wait()
				return nil
			}
			require.NoError(t, finishes(t, run))

			served := 0
			for i := range clients {
				require.Len(t, statuses[i], perClient)
				for _, s := range statuses[i] {
					if tc.wait {
						assert.Equal(t, http.StatusOK, s, "client %d: served in turn", i)
					} else {
						assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, s, "client %d", i)
					}
					if s == http.StatusOK {
						served++
					}
				}
			}
			assert.Positive(t, served)
			assert.LessOrEqual(t, c.peak.Load(), int64(tc.maxActive), "connections open at once")
			t.Logf("%d of %d requests served, at most %d connections", served, clients*perClient, c.peak.Load())
		})
	}
}

// finishes runs fn and returns its error, failing the test if it has not
// returned within 90 s: a hang, whatever the machine's speed.
func finishes(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(90 * time.Second):
		t.Fatal("hung")
		return nil
	}
}

// A stalled Redis (SIGSTOP; DEBUG SLEEP) answered 503 only after 4-9 s
// although the pool's read timeout is 2 s: reads had no deadline of their
// own, and a timeout was retried. Now a request's store operation runs
// under the configured Timeout, once, and the 503 comes by then.
func TestRedisStallAnswers503AtTheStoreDeadline(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--loglevel", "warning") // a server of this test's own, which it stops
	const timeout = 500 * time.Millisecond
	st, c := countedStore(t, srv, 0, true, redisstore.Options{Timeout: timeout})
	e := newEnvOnStore(t, srv, st)
	frontend, session := e.signIn("stalled")

	resume := srv.Stall()
	for _, q := range []req{{path: "/api/me", header: session}, {path: "/api/me", bearer: frontend}} {
		n := c.count()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // fails rather than hangs
		q.ctx = ctx
		before := time.Now()
		r, err := e.try(q)
		after := time.Now()
		cancel()
		require.NoError(t, err, "answered before the client gave up")
		assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
		assert.Equal(t, "session_store_unavailable", r.json(t)["error"])
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
		sent := c.since(n)
		require.Len(t, sent, 1, "one command, no retry after a timeout")
		assert.False(t, sent[0].Before(before.Add(timeout)), "the operation's deadline is the store's Timeout")
		assert.False(t, sent[0].After(after.Add(timeout)), "the operation's deadline is the store's Timeout")
	}
	assert.Contains(t, e.logs.String(), "store: unavailable: redis: timeout")
	resume()
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: session}).StatusCode, "served again once Redis answers")
}

// CLIENT KILL TYPE normal under load gave an occasional 503: a pooled
// connection that died before answering. A read that meets one runs again
// on a checked connection: no request fails.
func TestClientKillUnderLoadFailsNoRead(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--loglevel", "warning") // a server of this test's own, whose clients it kills
	e := newEnvSharing(t, "redis", &env{redis: srv})
	sessions := make([]string, 16)
	for i := range sessions {
		_, sessions[i] = e.signIn(fmt.Sprintf("kill-%d", i))
	}

	const clients, perClient = 8, 150
	var (
		done, killed atomic.Int64
		mu           sync.Mutex
		failures     []string
	)
	killAt := map[int64]bool{100: true, 400: true, 700: true, 1000: true}
	run := func() error {
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perClient {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					r, err := e.try(req{path: "/api/me", header: sessions[(i+j)%len(sessions)], ctx: ctx})
					cancel()
					if err != nil || r.StatusCode != http.StatusOK {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%v %d %s", err, r.StatusCode, r.body))
						mu.Unlock()
					}
					if killAt[done.Add(1)] {
						n, err := redis.Int64(srv.Do("CLIENT", "KILL", "TYPE", "normal"))
						if err == nil {
							killed.Add(n)
						}
					}
				}
			}()
		}
		wg.Wait()
		return nil
	}
	require.NoError(t, finishes(t, run))
	assert.Positive(t, killed.Load(), "connections were killed mid-run")
	assert.Empty(t, failures, "reads that failed")
	t.Logf("%d requests, %d connections killed, %d failed", done.Load(), killed.Load(), len(failures))
}

// Redis's error replies echo a command's arguments ("ERR unknown command
// 'EVALSHA', with args beginning with: ... 'sg:u:plurality:<user>'"):
// they reached ERROR logs with store keys, user ids and verifier bytes.
// The logs say the error's class only.
func TestStoreErrorsLogNoServerText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		disabled []string
	}{
		{"reads fail", []string{"GET"}},
		{"mint fails", []string{"EVALSHA", "EVAL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var extra []string
			for _, cmd := range tc.disabled {
				extra = append(extra, "--rename-command", cmd, "")
			}
			srv := storetest.Start(t, extra...)
			e := newEnvSharing(t, "redis", &env{redis: srv})
			user := "user-id-" + strings.ToLower(tc.disabled[0])
			frontend := e.fake.Issue(user, time.Hour)
			session := format.Token([16]byte([]byte("selector-0123456")), [16]byte{})
			for _, q := range []req{
				{method: http.MethodPost, path: "/auth/session", bearer: frontend},
				{path: "/api/me", header: session},
			} {
				r := e.do(q)
				if q.header != "" && tc.name == "mint fails" {
					continue // GET works: no session, 401
				}
				assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, r.body)
			}
			logs := e.logs.String()
			assert.Contains(t, logs, "store: unavailable: redis: error reply ERR")
			for _, leak := range []string{user, "sg:", format.KeyOf(session), "unknown command", "args beginning"} {
				assert.NotContains(t, logs, leak)
			}
		})
	}
}
