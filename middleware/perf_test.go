package middleware_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// The side-by-side harness of the README's performance table. Each
// scenario is a handler and a request carrying whatever credential the
// scenario reuses; the same scenarios run in-process (BenchmarkSteadyState)
// and over loopback HTTP with concurrent clients (TestPerformanceTable,
// run by make bench). Nothing here asserts a time: the counts that must
// hold (store reads and writes, upstream calls) are asserted by the tests.

// scenario is one way of serving an authenticated request.
type scenario struct {
	name     string
	baseline string // the scenario its ratio is taken against
	handler  http.Handler
	prepare  func(r *http.Request) // adds the credential
}

// ok is the protected handler every scenario ends in.
func ok(user func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := user(r)
		if u == "" {
			http.Error(w, "no user", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "hello "+u)
	})
}

// scenarios builds every scenario; the Redis ones only when a Redis
// server is available (storetest skips otherwise).
func scenarios(tb testing.TB, withRedis bool) []scenario {
	list := []scenario{{
		name:     "bare handler",
		baseline: "bare handler",
		handler:  ok(func(*http.Request) string { return "alice" }),
		prepare:  func(*http.Request) {},
	}}
	list = append(list, scsScenario(tb, "scs default (memory, gob)", nil))
	list = append(list, sessiongateScenario(tb, "sessiongate memory", store.NewMemory(), "bare handler"))
	list = append(list, naiveScenario(tb))
	if !withRedis {
		return list
	}
	srv := storetest.Start(tb)
	pool, err := redisstore.NewPool(srv.URL)
	require.NoError(tb, err)
	tb.Cleanup(func() { pool.Close() })
	conn := pool.Get()
	_, err = conn.Do("SET", "bench:user", "alice")
	require.NoError(tb, err)
	conn.Close()
	list = append(list, scenario{
		name:     "one Redis GET",
		baseline: "one Redis GET",
		handler: ok(func(r *http.Request) string {
			conn := pool.Get()
			defer conn.Close()
			u, _ := redis.String(conn.Do("GET", "bench:user"))
			return u
		}),
		prepare: func(*http.Request) {},
	})
	list = append(list, scsScenario(tb, "scs default + redisstore", scsredis.New(pool)))
	list = append(list, sessiongateScenario(tb, "sessiongate Redis", redisstore.New(pool, redisstore.Options{}), "one Redis GET"))
	near := redisstore.New(pool, redisstore.Options{NearCache: &redisstore.NearCache{}})
	tb.Cleanup(func() { near.(io.Closer).Close() })
	list = append(list, sessiongateScenario(tb, "sessiongate Redis + near cache", near, "one Redis GET"))
	return list
}

// scsScenario is scs as its README shows it: LoadAndSave around the
// handler, the default gob codec, a string value read per request.
func scsScenario(tb testing.TB, name string, st scs.Store) scenario {
	sm := scs.New()
	if st != nil {
		sm.Store = st
	}
	h := sm.LoadAndSave(ok(func(r *http.Request) string { return sm.GetString(r.Context(), "user") }))
	login := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", "alice")
	}))
	w := httptest.NewRecorder()
	login.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
	cookie := w.Result().Cookies()[0]
	baseline := "bare handler"
	if st != nil {
		baseline = "one Redis GET"
	}
	return scenario{name: name, baseline: baseline, handler: h, prepare: func(r *http.Request) { r.AddCookie(cookie) }}
}

// sessiongateScenario mints one session through the middleware and
// replays its cookie.
func sessiongateScenario(tb testing.TB, name string, st store.Store, baseline string) scenario {
	fake := providertest.NewPlurality()
	tb.Cleanup(fake.Close)
	auth := middleware.New(middleware.Config{
		Store:    st,
		Provider: plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
		Secret:   testSecret,
		Logger:   discardLogger,
	})
	h := auth.Handler(auth.RequireSession(ok(func(r *http.Request) string {
		u, _ := middleware.UserFrom(r.Context())
		return u.UserID
	})))
	w := httptest.NewRecorder()
	first := httptest.NewRequest("GET", "/", nil)
	first.Header.Set("Authorization", "Bearer "+fake.Issue("alice", 24*time.Hour))
	h.ServeHTTP(w, first)
	require.Equal(tb, http.StatusOK, w.Code, w.Body.String())
	cookie := w.Result().Cookies()[0]
	return scenario{name: name, baseline: baseline, handler: h, prepare: func(r *http.Request) { r.AddCookie(cookie) }}
}

// naiveScenario validates the frontend token with the provider on every
// request, as the Para seed's example does, against an upstream 20 ms away.
func naiveScenario(tb testing.TB) scenario {
	fake := providertest.NewPlurality()
	tb.Cleanup(fake.Close)
	fake.SetFault(providertest.Fault{Delay: 20 * time.Millisecond}) // then validates as usual
	p := plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)})
	token := fake.Issue("alice", 24*time.Hour)
	return scenario{
		name:     "validate upstream every request (20 ms)",
		baseline: "bare handler",
		handler: ok(func(r *http.Request) string {
			id, err := p.Validate(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			if err != nil {
				return ""
			}
			return id.UserID
		}),
		prepare: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
	}
}

// discardWriter is a ResponseWriter that keeps nothing, reused across
// iterations so the harness itself allocates nothing per request.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

func benchInProcess(b *testing.B, s scenario) {
	r := httptest.NewRequest("GET", "/", nil)
	s.prepare(r)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		s.handler.ServeHTTP(w, r)
		if w.status > 299 {
			b.Fatalf("%s: status %d", s.name, w.status)
		}
	}
}

// BenchmarkSteadyState serves a request carrying a live credential, in
// process, for every scenario.
func BenchmarkSteadyState(b *testing.B) {
	for _, s := range scenarios(b, redisAvailable()) {
		b.Run(strings.ReplaceAll(s.name, " ", "_"), func(b *testing.B) { benchInProcess(b, s) })
	}
}

func redisAvailable() bool { return os.Getenv("CI") == "true" || os.Getenv("REDIS_URL") != "" }

// loopback serves s over real loopback HTTP and drives it with clients
// concurrent keep-alive clients for d, returning requests per second.
func loopback(tb testing.TB, s scenario, clients int, d time.Duration) float64 {
	srv := httptest.NewServer(s.handler)
	defer srv.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var done, failed atomic.Int64
	run := func(until time.Time, count bool) {
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(until) {
					r, _ := http.NewRequest("GET", srv.URL+"/", nil)
					s.prepare(r)
					res, err := client.Do(r)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						failed.Add(1)
					} else if count {
						done.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	run(time.Now().Add(d/5), false) // warm up connections and caches
	failed.Store(0)
	start := time.Now()
	run(start.Add(d), true)
	if f := failed.Load(); f > 0 {
		tb.Errorf("%s: %d failed requests", s.name, f)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

// TestPerformanceTable prints the README's tables: every scenario in
// process and over loopback, with ratios to its baseline; then the cost at
// 1,000 and 1,000,000 sessions in Redis, and the Redis memory of one
// session. It runs only under make bench (SESSIONGATE_BENCH=1): it
// measures, it does not test.
func TestPerformanceTable(t *testing.T) {
	if os.Getenv("SESSIONGATE_BENCH") == "" {
		t.Skip("make bench runs this")
	}
	clients, d, rounds := 32, 2*time.Second, 3
	if v, err := time.ParseDuration(os.Getenv("SESSIONGATE_BENCH_DURATION")); err == nil {
		d = v
	}
	type row struct {
		s          scenario
		ns, allocs float64
		rps        []float64
	}
	var rows []*row
	byName := map[string]*row{}
	for _, s := range scenarios(t, redisAvailable()) {
		res := testing.Benchmark(func(b *testing.B) { benchInProcess(b, s) })
		r := &row{s: s, ns: float64(res.NsPerOp()), allocs: float64(res.AllocsPerOp())}
		rows = append(rows, r)
		byName[s.name] = r
	}
	// Loopback rounds go through every scenario in turn, so that a slow
	// moment of the machine does not fall on one scenario only; each
	// scenario's figure is its median round.
	for range rounds {
		for _, r := range rows {
			r.rps = append(r.rps, loopback(t, r.s, clients, d))
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}

	fmt.Printf("\nSteady state: a request carrying a live session (memory-store scenarios against the bare handler, Redis ones against one Redis GET)\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tin-process\tallocs\tover baseline\tloopback req/s\tvs baseline\t\n")
	for _, r := range rows {
		base := byName[r.s.baseline]
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s, %+.0f allocs\t%.0f\t%.2f×\t\n",
			r.s.name, round(time.Duration(r.ns)), r.allocs, round(time.Duration(r.ns-base.ns)), r.allocs-base.allocs,
			median(r.rps), median(r.rps)/median(base.rps))
	}
	tw.Flush()
	fmt.Printf("\nloopback: %d concurrent keep-alive clients, median of %d rounds of %s, client and server in one process; GOMAXPROCS=%d\n",
		clients, rounds, d, runtime.GOMAXPROCS(0))

	if !redisAvailable() {
		return
	}
	fmt.Printf("\nAs the store grows (sessiongate Redis, in process)\n\n")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "sessions in Redis\tsteady-state request\tallocs\tlist one user's 3 sessions\tallocs\t\n")
	for _, total := range scaleSizes {
		sc := newScaled(t, total)
		steady, list := testing.Benchmark(sc.steady), testing.Benchmark(sc.list)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t\n", total, round(time.Duration(steady.NsPerOp())), steady.AllocsPerOp(),
			round(time.Duration(list.NsPerOp())), list.AllocsPerOp())
	}
	tw.Flush()

	e := newEnv(t, "redis")
	r := e.do(req{method: "POST", path: "/auth/session", bearer: e.fake.Issue("8f14e45f-ceea-467f-a0d6-5f8c1c1e0a11", time.Hour),
		hdr: map[string]string{"User-Agent": chromeUA}})
	require.Equal(t, 201, r.StatusCode)
	keys, err := redis.Strings(e.redis.Do("KEYS", "*"))
	require.NoError(t, err)
	total := 0
	for _, k := range keys {
		n, err := redis.Int(e.redis.Do("MEMORY", "USAGE", k))
		require.NoError(t, err)
		total += n
	}
	fmt.Printf("\nRedis memory of one session (typical Plurality identity, desktop Chrome), MEMORY USAGE of every key it writes: %d bytes in %d keys\n", total, len(keys))
}

// round keeps three significant figures.
func round(d time.Duration) time.Duration {
	for r := time.Duration(1); ; r *= 10 {
		if d < 1000*r && d > -1000*r {
			return d.Round(r)
		}
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
