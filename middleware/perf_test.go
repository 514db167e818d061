package middleware_test

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's performance tables (make bench) and the harness's smoke
// test (make test). The harness itself is in harness_test.go.

// TestPerformanceTable prints the README's tables: for each group (memory,
// Redis, Redis Cluster, Redis Sentinel), every scenario in process and
// over loopback, paired with its anchor, at each concurrency level; the
// mint (first request); then the cost at 1,000 and 1,000,000 sessions in
// Redis, and the Redis memory of one session. It runs only under make
// bench (SESSIONGATE_BENCH=1): it measures, it does not test (it fails
// only when a request fails).
func TestPerformanceTable(t *testing.T) {
	if os.Getenv("SESSIONGATE_BENCH") == "" {
		t.Skip("make bench runs this")
	}
	cfg := benchConfigFromEnv(t)
	builds := []func(testing.TB) group{memoryGroup}
	if redisAvailable() {
		builds = append(builds, redisGroup, clusterGroup, sentinelGroup)
	}
	fmt.Printf("\nSteady state: a request carrying a live session. In process: ns/op and allocations (testing.Benchmark), and over the anchor.\n"+
		"Loopback: %s concurrent keep-alive clients (memory: the first only), client and server in one process, GOMAXPROCS=%d; in each round, after a warm-up,\n"+
		"a scenario takes turns with its anchor in slices of %s (anchor, scenario, anchor, ..., anchor: %d of the scenario's, %s in all), and its ratio is\n"+
		"its req/s over the anchor's in that round (the anchor's requests carrying the scenario's cookie or token, which it ignores); the median (min–max) of %d rounds.\n"+
		"Redis: conns = connections the servers accepted in a run (the most of any round), pool = the pool's size: conns ≤ pool is no churn.\n",
		strings.Trim(strings.Join(strings.Fields(fmt.Sprint(cfg.clients)), ", "), "[]"), runtime.GOMAXPROCS(0),
		cfg.d/slicesPerRound, slicesPerRound, cfg.d, cfg.rounds)
	// Each group is built, measured (its mints too) and torn down in a
	// subtest of its own, so that no group is measured beside another's
	// Redis servers, sentinels and links, whose background work would
	// take its share of the two cores.
	var mints []mintRow
	for i, build := range builds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			g := build(t)
			f := measureGroup(t, g, cfg)
			printGroup(os.Stdout, g, f)
			for _, failure := range f.failures(g) {
				t.Error(failure)
			}
			mints = append(mints, measureMints(t, []group{g}, 0)...)
		})
	}
	printMintRows(os.Stdout, mints)
	if !redisAvailable() {
		return
	}

	fmt.Printf("\nAs the store grows (sessiongate Redis, in process)\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
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

// TestHarnessSmoke runs the harness once, small (a few clients, short
// runs, one round, 20 iterations in process), on memory and on one Redis,
// and checks that it measures: finite positive figures, no failed
// request, connection counts read, a table printed. It asserts no time.
func TestHarnessSmoke(t *testing.T) {
	defer setBenchtime(t, "20x")()
	cfg := benchConfig{d: 50 * time.Millisecond, rounds: 1, clients: []int{4}}
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var g group
			if kind == "memory" {
				g = memoryGroup(t)
			} else {
				g = redisGroup(t)
			}
			f := measureGroup(t, g, cfg)
			assert.Empty(t, f.failures(g))
			for i, s := range append([]scenario{g.anchor}, g.rows...) {
				assertFinitePositive(t, f.inproc[i].ns, s.name+" ns/op")
				assertFinitePositive(t, f.inproc[i].allocs, s.name+" allocs")
				p := f.loop[0][i]
				assertFinitePositive(t, medianOf(p.rps), s.name+" req/s")
				assertFinitePositive(t, medianOf(p.ratios), s.name+" ratio")
				if kind == "redis" {
					assert.NotEmpty(t, s.counted, s.name)
					assert.NotEmpty(t, s.pool, s.name)
				}
			}
			if kind == "redis" {
				// The connection count sees one new connection, and only it.
				servers := g.anchor.counted
				before := acceptedConnections(t, servers)
				conn, err := redis.DialURL(servers[0].URL)
				require.NoError(t, err)
				_, err = conn.Do("PING")
				require.NoError(t, err)
				conn.Close()
				assert.Equal(t, int64(1), acceptedConnections(t, servers)-before, "connections counted")
			}
			var out strings.Builder
			printGroup(&out, g, f)
			for _, s := range g.rows {
				assert.Contains(t, out.String(), s.name)
			}
			t.Log(out.String())
			out.Reset()
			printMints(t, &out, []group{g}, 5)
			for _, m := range g.mints {
				f := measureMint(t, m, 5)
				assertFinitePositive(t, f.ns, m.name+" mint ns/op")
				if m.trips != nil {
					assertFinitePositive(t, f.trips, m.name+" mint round trips")
				}
				if m.servers != nil {
					assertFinitePositive(t, f.commands, m.name+" mint commands")
				}
				assert.Contains(t, out.String(), m.name)
			}
			t.Log(out.String())
		})
	}
}

func assertFinitePositive(t *testing.T, v float64, what string) {
	t.Helper()
	assert.False(t, math.IsNaN(v) || math.IsInf(v, 0) || v <= 0, "%s: %v, want a finite positive figure", what, v)
}

// BenchmarkSteadyState serves a request carrying a live credential, in
// process, for every scenario of the memory and single-Redis groups.
func BenchmarkSteadyState(b *testing.B) {
	groups := []group{memoryGroup(b)}
	if redisAvailable() {
		groups = append(groups, redisGroup(b))
	}
	for _, g := range groups {
		for _, s := range append([]scenario{g.anchor}, g.rows...) {
			b.Run(strings.ReplaceAll(s.name, " ", "_"), func(b *testing.B) { benchInProcess(b, s) })
		}
	}
}

func redisAvailable() bool { return os.Getenv("CI") == "true" || os.Getenv("REDIS_URL") != "" }

// groupFigures are a group's measured figures: its levels, and per
// scenario (the anchor first) in process and, per level, over loopback.
type groupFigures struct {
	levels []int
	inproc []inProcess
	loop   [][]paired // [level][scenario]
}

// measureGroup measures g in process, then over loopback at each level
// (the first only when g does not sweep).
func measureGroup(tb testing.TB, g group, cfg benchConfig) groupFigures {
	tb.Helper()
	f := groupFigures{levels: cfg.clients}
	if !g.sweep {
		f.levels = f.levels[:1]
	}
	for _, s := range append([]scenario{g.anchor}, g.rows...) {
		f.inproc = append(f.inproc, measureInProcess(tb, s))
	}
	for _, clients := range f.levels {
		anchor, rows := measurePaired(tb, g, clients, cfg)
		f.loop = append(f.loop, append([]paired{anchor}, rows...))
	}
	return f
}

// failures returns a line per scenario and level where requests failed.
func (f groupFigures) failures(g group) []string {
	var out []string
	for l, level := range f.loop {
		for i, p := range level {
			if p.failed > 0 {
				name := g.anchor.name
				if i > 0 {
					name = g.rows[i-1].name
				}
				out = append(out, fmt.Sprintf("%s at %d clients: %d failed requests", name, f.levels[l], p.failed))
			}
		}
	}
	return out
}

// printGroup prints g's table of figures f to w.
func printGroup(w io.Writer, g group, f groupFigures) {
	redis := g.anchor.counted != nil
	fmt.Fprintf(w, "\n%s\n\n", g.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "scenario\tns/op\tallocs\tover the anchor\t"
	if redis {
		head += "pool\t"
	}
	for _, clients := range f.levels {
		head += fmt.Sprintf("%d clients: req/s\t× anchor\t", clients)
		if redis {
			head += "conns\t"
		}
	}
	fmt.Fprintln(tw, head)
	for i, s := range append([]scenario{g.anchor}, g.rows...) {
		in := f.inproc[i]
		line := fmt.Sprintf("%s\t%s\t%.0f\t", s.name, round(time.Duration(in.ns)), in.allocs)
		if i == 0 {
			line += "(anchor)\t"
		} else {
			line += fmt.Sprintf("%s, %+.0f allocs\t", signed(time.Duration(in.ns-f.inproc[0].ns)), in.allocs-f.inproc[0].allocs)
		}
		if redis {
			line += s.pool + "\t"
		}
		for l := range f.levels {
			p := f.loop[l][i]
			line += fmt.Sprintf("%.0f\t%s\t", medianOf(p.rps), ratioCell(p.ratios))
			if redis {
				line += fmt.Sprintf("%d\t", p.opened)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// signed prints d rounded, with its sign.
func signed(d time.Duration) string {
	if d < 0 {
		return round(d).String()
	}
	return "+" + round(d).String()
}

// ratioCell prints a scenario's ratio: the median and, over several
// rounds, the range.
func ratioCell(ratios []float64) string {
	m := medianOf(ratios)
	if len(ratios) < 2 {
		return fmt.Sprintf("%.2f×", m)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", m, slices.Min(ratios), slices.Max(ratios))
}

// mintRow is one mint case's measured figures.
type mintRow struct {
	m mintCase
	f mintFigures
}

// measureMints measures every group's mint cases (n = 0:
// testing.Benchmark's own count).
func measureMints(tb testing.TB, groups []group, n int) []mintRow {
	tb.Helper()
	var rows []mintRow
	for _, g := range groups {
		for _, m := range g.mints {
			rows = append(rows, mintRow{m: m, f: measureMint(tb, m, n)})
		}
	}
	return rows
}

// printMints measures every group's mint cases and prints their table to
// w.
func printMints(tb testing.TB, w io.Writer, groups []group, n int) {
	tb.Helper()
	printMintRows(w, measureMints(tb, groups, n))
}

// printMintRows prints the mint table of rows to w; a floor row (the
// upstream call alone) is what the rows after it are compared with.
func printMintRows(w io.Writer, rows []mintRow) {
	fmt.Fprintf(w, "\nFirst request (mint): a new frontend token, validated upstream (a fake on loopback TLS), then a session minted; in process.\n"+
		"Round trips: the store's writes after a read, counted on its connections; commands: INFO commandstats on the primaries (a script's own calls included).\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "first request\tns/op\tallocs\tover the upstream call\tround trips\tcommands\t")
	var floor *mintFigures
	for _, r := range rows {
		m, f := r.m, r.f
		over := ""
		switch {
		case m.floor:
			over, floor = "(floor)", &f
		case floor != nil:
			over = fmt.Sprintf("%s, %+.0f allocs", signed(time.Duration(f.ns-floor.ns)), f.allocs-floor.allocs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t\n", m.name, round(time.Duration(f.ns)), f.allocs, over, perOpCount(f.trips), perOpCount(f.commands))
	}
	tw.Flush()
}

// perOpCount prints a per-operation count, "" when not counted.
func perOpCount(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return fmt.Sprintf("%.1f", v)
}

// setBenchtime sets -test.benchtime (which testing.Benchmark reads) to v
// until restore is called.
func setBenchtime(tb testing.TB, v string) (restore func()) {
	tb.Helper()
	f := flag.Lookup("test.benchtime")
	require.NotNil(tb, f)
	old := f.Value.String()
	require.NoError(tb, f.Value.Set(v))
	return func() { f.Value.Set(old) }
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
