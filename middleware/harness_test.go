package middleware_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// The harness of make bench (TestPerformanceTable) and of its smoke test
// in make test (TestHarnessSmoke). A group is an anchor and the scenarios
// measured against it:
//
//   - memory: the bare handler; scs + memstore, sessiongate memory (cookie,
//     header, bearer), validating upstream on every request;
//   - Redis: one GET on a pool like the store's (redisstore.NewPool);
//     scs + redisstore, sessiongate Redis (cookie, header, bearer);
//   - Redis Cluster and Redis Sentinel: one GET to the node that owns the
//     session's key (the slot's primary; the primary); sessiongate on
//     the deployment (cookie, header, bearer).
//
// Each scenario is measured in process (testing.Benchmark: ns/op and
// allocations) and over loopback HTTP, paired: the anchor, the scenario,
// the anchor, in turn, the scenario's ratio being its requests per
// second over the mean of its two flanking anchor runs, and its figure
// the median over rounds (unpaired rounds on a shared machine moved by up
// to ±0.15). On Redis, each run also counts the connections the servers
// accepted (INFO stats total_connections_received), to compare with the
// pool's size: more means churn. Nothing here asserts a time.

// scenario is one way of serving an authenticated request.
type scenario struct {
	name    string
	handler http.Handler
	prepare func(r *http.Request) // adds the credential
	// counted are the Redis servers whose accepted connections are
	// counted during a loopback run (none for memory).
	counted []*storetest.Server
	// pool is the size of the pool the scenario reads through, as
	// printed: "" when it has none.
	pool string
}

// group is an anchor and the scenarios measured against it.
type group struct {
	title  string
	anchor scenario
	rows   []scenario
	// sweep: measured at every concurrency level (else the first only).
	sweep bool
	// mints are the group's first-request cases (on the same deployment).
	mints []mintCase
}

// benchConfig is the size of a make bench run, from the environment
// (SESSIONGATE_BENCH_DURATION, _ROUNDS, _CLIENTS; make bench's
// BENCH_DURATION, BENCH_ROUNDS, BENCH_CLIENTS).
type benchConfig struct {
	d       time.Duration // one loopback run, after a warm-up of d/5 (200 ms at most)
	rounds  int
	clients []int // the concurrency sweep
}

func benchConfigFromEnv(tb testing.TB) benchConfig {
	cfg := benchConfig{d: time.Second, rounds: 3, clients: []int{32, 64, 256}}
	if v := os.Getenv("SESSIONGATE_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(tb, err, "SESSIONGATE_BENCH_DURATION")
		cfg.d = d
	}
	if v := os.Getenv("SESSIONGATE_BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(tb, err, "SESSIONGATE_BENCH_ROUNDS")
		cfg.rounds = max(n, 1)
	}
	if v := os.Getenv("SESSIONGATE_BENCH_CLIENTS"); v != "" {
		cfg.clients = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(tb, err, "SESSIONGATE_BENCH_CLIENTS")
			cfg.clients = append(cfg.clients, n)
		}
	}
	return cfg
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

// bare is the bare handler: the floor of every memory scenario.
func bare() scenario {
	return scenario{
		name:    "bare handler",
		handler: ok(func(*http.Request) string { return "alice" }),
		prepare: func(*http.Request) {},
	}
}

// memoryGroup: every scenario that needs no Redis, against the bare
// handler.
func memoryGroup(tb testing.TB) group {
	g := group{title: "Memory (anchor: the bare handler)", anchor: bare()}
	g.rows = append(g.rows, scsScenario(tb, "scs + memstore", nil, nil))
	g.rows = append(g.rows, sessiongateScenarios(tb, "sessiongate memory", store.NewMemory()).scenarios...)
	g.rows = append(g.rows, naiveScenario(tb))
	g.mints = []mintCase{validateCase(tb), newMintCase(tb, "sessiongate memory", store.NewMemory(), nil, nil)}
	return g
}

// singleRedisStores are the sessiongate stores of the single-Redis group,
// each measured against one GET on the same server, on its own pool:
// redisstore.Open's, as README and the example make it (nil: its size
// is then NewPool's default). The near cache's link is one connection
// outside the pool, dialled once.
var singleRedisStores = []struct {
	name string
	open func(tb testing.TB, url string) (store.Store, *redis.Pool)
}{
	{"sessiongate Redis", func(tb testing.TB, url string) (store.Store, *redis.Pool) {
		return openRedis(tb, url, redisstore.Options{}), nil
	}},
	{"sessiongate Redis + near cache", func(tb testing.TB, url string) (store.Store, *redis.Pool) {
		return openRedis(tb, url, redisstore.Options{NearCache: &redisstore.NearCache{}}), nil
	}},
}

// openRedis is redisstore.Open, closed when tb ends.
func openRedis(tb testing.TB, url string, opts redisstore.Options) store.Store {
	st, err := redisstore.Open(url, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { st.(io.Closer).Close() })
	return st
}

// redisGroup: one Redis server; the anchor is one GET of a session's key
// through a pool like the store's.
func redisGroup(tb testing.TB) group {
	srv := storetest.Start(tb)
	var rows []scenario
	var sessionKey string
	for _, s := range singleRedisStores {
		st, pool := s.open(tb, srv.URL)
		set := sessiongateScenarios(tb, s.name, st)
		if sessionKey == "" {
			sessionKey = set.sessionKey
		}
		rows = append(rows, set.counting([]*storetest.Server{srv}, pool)...)
	}
	scsPool := benchPool(tb, srv.URL)
	scsRow := scsScenario(tb, "scs + redisstore", scsredis.New(scsPool), scsPool)
	scsRow.counted = []*storetest.Server{srv}
	g := group{title: "Redis, one server (anchor: one GET)", sweep: true,
		anchor: oneGET(tb, "one Redis GET", srv, sessionKey)}
	g.rows = append([]scenario{scsRow}, rows...)
	trips := new(atomic.Int64)
	st := redisstore.New(countingPool(tb, srv.URL, trips), redisstore.Options{})
	g.mints = []mintCase{newMintCase(tb, "sessiongate Redis", st, trips, []*storetest.Server{srv})}
	return g
}

// clusterGroup: a Redis Cluster of three primaries and three replicas;
// the anchor is one GET to the primary of the session key's slot.
func clusterGroup(tb testing.TB) group {
	c := storetest.StartCluster(tb)
	st, err := redisstore.Open("redis://"+c.Addrs()[0]+"?cluster=true", redisstore.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { st.(io.Closer).Close() })
	set := sessiongateScenarios(tb, "sessiongate Cluster", st)
	owner := c.Owner(set.sessionKey)
	return group{title: "Redis Cluster (anchor: one GET to the primary of the session key's slot)", sweep: true,
		anchor: oneGET(tb, "one GET to the slot's primary", owner, set.sessionKey),
		rows:   set.counting(c.Nodes, nil),
		// Nodes 0-2 are the primaries (replicas count replicated commands too).
		mints: []mintCase{newMintCase(tb, "sessiongate Cluster", st, nil, c.Nodes[:3])}}
}

// sentinelGroup: a primary, two replicas and three sentinels; the anchor
// is one GET to the primary.
func sentinelGroup(tb testing.TB) group {
	set := storetest.StartSentinel(tb, storetest.SentinelConfig{})
	st, err := redisstore.Open(set.URL(), redisstore.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { st.(io.Closer).Close() })
	sg := sessiongateScenarios(tb, "sessiongate Sentinel", st)
	return group{title: "Redis Sentinel (anchor: one GET to the primary)", sweep: true,
		anchor: oneGET(tb, "one GET to the primary", set.Nodes[0], sg.sessionKey),
		rows:   sg.counting(set.Nodes, nil),
		mints:  []mintCase{newMintCase(tb, "sessiongate Sentinel", st, nil, set.Nodes[:1])}}
}

// benchPool is a pool as the store's users make it: redisstore.NewPool,
// its defaults untouched.
func benchPool(tb testing.TB, url string) *redis.Pool {
	pool, err := redisstore.NewPool(url)
	require.NoError(tb, err)
	tb.Cleanup(func() { pool.Close() })
	return pool
}

// poolSize prints a pool's size: MaxActive, or "∞" with the idle limit
// when it has none; nil is NewPool's default (what Open makes too).
func poolSize(pool *redis.Pool) string {
	if pool == nil {
		pool, _ = redisstore.NewPool("redis://127.0.0.1:6379")
		if pool == nil {
			return "?"
		}
		defer pool.Close()
	}
	if pool.MaxActive > 0 {
		return strconv.Itoa(pool.MaxActive)
	}
	return fmt.Sprintf("∞ (idle %d)", pool.MaxIdle)
}

// oneGET is the Redis anchor: a handler doing one GET of key (a session's
// stored value) on srv, through its own NewPool pool.
func oneGET(tb testing.TB, name string, srv *storetest.Server, key string) scenario {
	pool := benchPool(tb, srv.URL)
	return scenario{
		name: name,
		handler: ok(func(r *http.Request) string {
			conn := pool.Get()
			defer conn.Close()
			if v, err := redis.Bytes(conn.Do("GET", key)); err != nil || len(v) == 0 {
				return ""
			}
			return "alice"
		}),
		prepare: func(*http.Request) {},
		counted: []*storetest.Server{srv},
		pool:    poolSize(pool),
	}
}

// scsScenario is scs as its README shows it: LoadAndSave around the
// handler, the default gob codec, a string value read per request. pool
// is st's pool, if it has one.
func scsScenario(tb testing.TB, name string, st scs.Store, pool *redis.Pool) scenario {
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
	s := scenario{name: name, handler: h, prepare: func(r *http.Request) { r.AddCookie(cookie) }}
	if pool != nil {
		s.pool = poolSize(pool)
	}
	return s
}

// credentialSet is the three ways a client carries one session of one
// middleware: the cookie, the session header, the frontend token alone.
type credentialSet struct {
	scenarios  []scenario
	sessionKey string // the Redis key of the session's record
}

// counting returns the set's scenarios counting connections on servers,
// through pool (nil: the store's own, NewPool's default size).
func (c credentialSet) counting(servers []*storetest.Server, pool *redis.Pool) []scenario {
	out := slices.Clone(c.scenarios)
	for i := range out {
		out[i].counted, out[i].pool = servers, poolSize(pool)
	}
	return out
}

// benchMiddleware is a middleware on st (default configuration) against
// a fake Plurality, around a handler that answers with the user's id.
func benchMiddleware(tb testing.TB, st store.Store) (http.Handler, *providertest.Plurality) {
	fake := providertest.NewPlurality()
	tb.Cleanup(fake.Close)
	auth := middleware.New(middleware.Config{
		Store:    st,
		Provider: plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
		Secret:   testSecret,
		Logger:   discardLogger,
	})
	return auth.Handler(auth.RequireSession(ok(func(r *http.Request) string {
		u, _ := middleware.UserFrom(r.Context())
		return u.UserID
	}))), fake
}

// sessiongateScenarios mints one session through a middleware on st
// (default configuration) and returns its cookie, header and bearer
// scenarios.
func sessiongateScenarios(tb testing.TB, name string, st store.Store) credentialSet {
	h, fake := benchMiddleware(tb, st)
	frontend := fake.Issue("alice", 24*time.Hour)
	w := httptest.NewRecorder()
	first := httptest.NewRequest("GET", "/", nil)
	first.Header.Set("Authorization", "Bearer "+frontend)
	h.ServeHTTP(w, first)
	require.Equal(tb, http.StatusOK, w.Code, w.Body.String())
	cookie := w.Result().Cookies()[0]
	return credentialSet{
		sessionKey: "sg:s:" + format.KeyOf(cookie.Value),
		scenarios: []scenario{
			{name: name + ", cookie", handler: h, prepare: func(r *http.Request) { r.AddCookie(cookie) }},
			{name: name + ", header", handler: h, prepare: func(r *http.Request) { r.Header.Set("X-Session-Token", cookie.Value) }},
			{name: name + ", bearer", handler: h, prepare: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+frontend) }},
		},
	}
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
		name: "validate upstream every request (20 ms)",
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

// benchInProcess serves s's request in process, b.N times.
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

// inProcess is one scenario's in-process figures.
type inProcess struct{ ns, allocs float64 }

// measureInProcess benchmarks s in process; a request that does not
// answer 200 fails tb.
func measureInProcess(tb testing.TB, s scenario) inProcess {
	tb.Helper()
	res := testing.Benchmark(func(b *testing.B) { benchInProcess(b, s) })
	if res.N == 0 {
		tb.Errorf("%s: the in-process benchmark failed (a request did not answer 200)", s.name)
	}
	return inProcess{ns: float64(res.T.Nanoseconds()) / float64(max(res.N, 1)), allocs: float64(res.AllocsPerOp())}
}

// loopbackRun is the figures of one scenario over some slices of time.
type loopbackRun struct {
	done    int64         // requests answered 200 in counted slices
	elapsed time.Duration // the counted slices' time
	failed  int64         // requests that did not answer 200, warm-up included
	opened  int64         // connections the counted servers accepted, warm-up included
}

func (r loopbackRun) rps() float64 { return float64(r.done) / r.elapsed.Seconds() }

// driver serves one scenario over real loopback HTTP, driven by clients
// concurrent keep-alive clients (client and server in this process), in
// slices of time: the server and the clients' connections stay up between
// slices, so that two drivers can take turns.
type driver struct {
	s       scenario
	clients int
	srv     *httptest.Server
	client  *http.Client
	run     loopbackRun
}

// newDriver starts s's server, and warms it up (and its connections) for
// warm.
func newDriver(tb testing.TB, s scenario, clients int, warm time.Duration) *driver {
	tb.Helper()
	transport := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	d := &driver{s: s, clients: clients, srv: httptest.NewServer(s.handler), client: &http.Client{Transport: transport}}
	d.slice(tb, warm, false)
	return d
}

// close stops d's server and closes its connections.
func (d *driver) close() {
	d.client.Transport.(*http.Transport).CloseIdleConnections()
	d.srv.Close()
}

// slice drives d for length, counted in d.run when count is set.
func (d *driver) slice(tb testing.TB, length time.Duration, count bool) {
	tb.Helper()
	before := acceptedConnections(tb, d.s.counted)
	var done, failed atomic.Int64
	start := time.Now()
	until := start.Add(length)
	var wg sync.WaitGroup
	for range d.clients {
		wg.Go(func() {
			for time.Now().Before(until) {
				r, _ := http.NewRequest("GET", d.srv.URL+"/", nil)
				d.s.prepare(r)
				res, err := d.client.Do(r)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
				} else {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	d.run.failed += failed.Load()
	d.run.opened += acceptedConnections(tb, d.s.counted) - before
	if count {
		d.run.done += done.Load()
		d.run.elapsed += elapsed
	}
}

// slicesPerRound is how many slices of a scenario one round of
// measurePaired takes, each flanked by slices of the anchor.
const slicesPerRound = 4

// statsConns are the connections that read INFO stats, one per server,
// kept open so that reading does not count itself.
var statsConns sync.Map // *storetest.Server → redis.Conn

// acceptedConnections sums total_connections_received over servers.
func acceptedConnections(tb testing.TB, servers []*storetest.Server) int64 {
	tb.Helper()
	var total int64
	for _, s := range servers {
		c, found := statsConns.Load(s)
		if !found {
			conn, err := redis.DialURL(s.URL)
			require.NoError(tb, err)
			tb.Cleanup(func() { statsConns.Delete(s); conn.Close() })
			c = conn
			statsConns.Store(s, conn)
		}
		info, err := redis.String(c.(redis.Conn).Do("INFO", "stats"))
		require.NoError(tb, err)
		n, found := infoInt(info, "total_connections_received")
		require.True(tb, found, "INFO stats has total_connections_received")
		total += n
	}
	return total
}

// infoInt reads field's integer value in an INFO answer.
func infoInt(info, field string) (int64, bool) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// paired is one scenario's loopback figures at one concurrency level.
type paired struct {
	rps, ratios []float64 // per round
	failed      int64     // over every round
	opened      int64     // the most connections accepted in one round
}

func (p *paired) add(r loopbackRun) {
	p.rps = append(p.rps, r.rps())
	p.failed += r.failed
	p.opened = max(p.opened, r.opened)
}

// measurePaired runs g over loopback at clients, in rounds. In a round,
// each row takes turns with the anchor in short slices (anchor, row,
// anchor, ..., anchor: slicesPerRound of the row's, of cfg.d/
// slicesPerRound each, between slicesPerRound+1 of the anchor's), both
// servers and their clients' connections staying up, warmed up before;
// the row's ratio is its requests per second over the anchor's in that
// round. Short turns cancel the machine's slow drifts (another tenant,
// the host's frequency), which moved whole one-second runs by up to a
// tenth. The anchor's requests carry the row's credential (which the
// anchor ignores): every handler whose clients send a cookie or a token
// receives it, so that a ratio is the middleware's work alone, not the
// client's cost of sending a 300-byte token and the server's of reading
// it.
func measurePaired(tb testing.TB, g group, clients int, cfg benchConfig) (anchor paired, rows []paired) {
	tb.Helper()
	rows = make([]paired, len(g.rows))
	warm := min(cfg.d/5, 200*time.Millisecond)
	length := cfg.d / slicesPerRound
	for range cfg.rounds {
		for i, s := range g.rows {
			a := g.anchor
			a.prepare = s.prepare
			ad, sd := newDriver(tb, a, clients, warm), newDriver(tb, s, clients, warm)
			ad.slice(tb, length, true)
			for range slicesPerRound {
				sd.slice(tb, length, true)
				ad.slice(tb, length, true)
			}
			ad.close()
			sd.close()
			anchor.add(ad.run)
			anchor.ratios = append(anchor.ratios, 1)
			rows[i].add(sd.run)
			rows[i].ratios = append(rows[i].ratios, sd.run.rps()/ad.run.rps())
		}
	}
	return anchor, rows
}

// medianOf returns the median of v (the upper one of an even count).
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// mintCase is the first request of a new frontend token, served in
// process: the upstream call, then the mint on the store.
type mintCase struct {
	name string
	h    http.Handler
	fake *providertest.Plurality
	// trips counts the store's round trips (nil: not counted).
	trips *atomic.Int64
	// servers are where INFO commandstats counts the store's commands.
	servers []*storetest.Server
	// floor: the case the others are compared with (the upstream call).
	floor bool
}

// mintFigures is one mintCase's figures, per mint.
type mintFigures struct {
	inProcess
	trips, commands float64 // NaN when not counted
}

// newMintCase builds a middleware on st for mints.
func newMintCase(tb testing.TB, name string, st store.Store, trips *atomic.Int64, servers []*storetest.Server) mintCase {
	h, fake := benchMiddleware(tb, st)
	return mintCase{name: name, h: h, fake: fake, trips: trips, servers: servers}
}

// validateCase is the mint's floor: the upstream call alone, for a new
// token each time (the same fake upstream as the mints').
func validateCase(tb testing.TB) mintCase {
	fake := providertest.NewPlurality()
	tb.Cleanup(fake.Close)
	p := plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)})
	return mintCase{name: "upstream validation alone", floor: true, fake: fake, h: ok(func(r *http.Request) string {
		id, err := p.Validate(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			return ""
		}
		return id.UserID
	})}
}

// mintUsers makes each minted token's user new, across benchmark runs.
var mintUsers atomic.Int64

// measureMint mints n sessions (n = 0: as many as testing.Benchmark
// takes), each from a new token of a new user, and returns the figures
// per mint.
func measureMint(tb testing.TB, m mintCase, n int) mintFigures {
	tb.Helper()
	var trips, commands int64
	body := func(b *testing.B) {
		tokens := make([]string, b.N)
		for i := range tokens {
			tokens[i] = m.fake.Issue(fmt.Sprintf("mint-%d", mintUsers.Add(1)), 24*time.Hour)
		}
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest("GET", "/", nil)
		cmdBefore := commandCount(b, m.servers)
		var tripsBefore int64
		if m.trips != nil {
			tripsBefore = m.trips.Load()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			clear(w.h)
			w.status = 0
			r.Header.Set("Authorization", "Bearer "+tokens[i])
			m.h.ServeHTTP(w, r)
			if w.status > 299 {
				b.Fatalf("%s: status %d", m.name, w.status)
			}
		}
		b.StopTimer()
		if m.trips != nil {
			trips = m.trips.Load() - tripsBefore
		}
		commands = commandCount(b, m.servers) - cmdBefore
	}
	var res testing.BenchmarkResult
	if n > 0 {
		res = benchmarkN(tb, n, body)
	} else {
		res = testing.Benchmark(body)
	}
	if res.N == 0 {
		tb.Errorf("%s: the first-request benchmark failed (a request did not answer 200)", m.name)
	}
	f := mintFigures{
		inProcess: inProcess{ns: float64(res.T.Nanoseconds()) / float64(max(res.N, 1)), allocs: float64(res.AllocsPerOp())},
		trips:     math.NaN(), commands: math.NaN(),
	}
	if m.trips != nil {
		f.trips = float64(trips) / float64(res.N)
	}
	if len(m.servers) > 0 {
		f.commands = float64(commands) / float64(res.N)
	}
	return f
}

// benchmarkN runs body once with b.N = n, for the smoke test: through
// testing.Benchmark with -test.benchtime set to nx for the call.
func benchmarkN(tb testing.TB, n int, body func(b *testing.B)) testing.BenchmarkResult {
	tb.Helper()
	defer setBenchtime(tb, fmt.Sprintf("%dx", n))()
	return testing.Benchmark(body)
}

// commandCount sums, over servers, the calls INFO commandstats counts,
// INFO's own excepted.
func commandCount(tb testing.TB, servers []*storetest.Server) int64 {
	tb.Helper()
	var total int64
	for _, s := range servers {
		info, err := redis.String(s.Do("INFO", "commandstats"))
		require.NoError(tb, err)
		for line := range strings.SplitSeq(info, "\n") {
			name, rest, found := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !found || name == "cmdstat_info" {
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			n, err := strconv.ParseInt(calls, 10, 64)
			require.NoError(tb, err)
			total += n
		}
	}
	return total
}

// countingPool is NewPool's pool on url whose connections count round
// trips in trips: each write that follows a read (or starts the
// connection) is one.
func countingPool(tb testing.TB, url string, trips *atomic.Int64) *redis.Pool {
	pool := benchPool(tb, url)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	pool.DialContext = func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", addr, redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &tripConn{Conn: c, trips: trips}, nil
		}))
	}
	return pool
}

// tripConn counts the round trips of one connection (used by one
// goroutine at a time, as redigo's connections are).
type tripConn struct {
	net.Conn
	trips   *atomic.Int64
	writing bool
}

func (c *tripConn) Write(b []byte) (int, error) {
	if !c.writing {
		c.writing = true
		c.trips.Add(1)
	}
	return c.Conn.Write(b)
}

func (c *tripConn) Read(b []byte) (int, error) {
	c.writing = false
	return c.Conn.Read(b)
}
