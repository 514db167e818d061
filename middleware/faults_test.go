package middleware_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Faults with a real Redis and a loopback upstream.

// newDurableEnv is newEnv on a Redis that writes every command to its
// append-only file before answering, as docker-compose.yml runs it.
func newDurableEnv(t *testing.T, mods ...func(*middleware.Config)) *env {
	srv := storetest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	return newEnvSharing(t, "redis", &env{redis: srv}, append(mods, func(c *middleware.Config) {
		// Every simulated client is its own address, as on the Internet.
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})...)
}

// outcome is one request of a load run.
type outcome struct {
	start   time.Time
	elapsed time.Duration
	status  int // 0: no answer at all
}

func TestRedisRestartUnderLoad(t *testing.T) {
	t.Parallel()
	e := newDurableEnv(t)
	sessions := make([]string, 50)
	for i := range sessions {
		_, sessions[i] = e.signIn(fmt.Sprintf("u%d", i))
	}

	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := map[string]string{"X-Test-Client": fmt.Sprintf("10.0.0.%d", c)}
			for !stop.Load() {
				start := time.Now()
				r, err := e.try(req{path: "/api/me", header: sessions[rand.IntN(len(sessions))], hdr: client})
				o := outcome{start: start, elapsed: time.Since(start)}
				if err == nil {
					o.status = r.StatusCode
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	// answered counts the requests that started after since and have
	// been answered; the test waits for counts, never for a duration.
	answered := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.start.After(since) {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return answered(time.Time{}) >= 16 }, time.Minute, 10*time.Millisecond)
	e.redis.Stop()
	down := time.Now() // killed: no request started from now on can be answered from Redis
	require.Eventually(t, func() bool { return answered(down) >= 16 }, time.Minute, 10*time.Millisecond)
	restarting := time.Now()
	e.redis.Restart()
	up := time.Now() // answering PING
	require.Eventually(t, func() bool { return answered(up) >= 64 }, time.Minute, 10*time.Millisecond)
	stop.Store(true)
	wg.Wait()

	var during, after []outcome
	for _, o := range outcomes {
		assert.NotEqual(t, http.StatusInternalServerError, o.status, "never a 500")
		assert.NotZero(t, o.status, "always an answer")
		switch {
		case o.start.After(down) && o.start.Add(o.elapsed).Before(restarting):
			during = append(during, o)
			assert.Equal(t, http.StatusServiceUnavailable, o.status, "never 200 or 401 while the store is down")
		case o.start.After(up):
			after = append(after, o)
		}
	}
	require.NotEmpty(t, during)
	first := slices.IndexFunc(after, func(o outcome) bool { return o.status == http.StatusOK })
	require.GreaterOrEqual(t, first, 0, "the service came back")
	recovered := after[first].start.Add(after[first].elapsed).Sub(up)
	t.Logf("%d requests; %d while Redis was down (all 503); first 200 %v after Redis restarted", len(outcomes), len(during), recovered.Round(time.Millisecond))
	assert.Zero(t, first, "the first request after Redis answers again succeeds: recovered by itself, the app never restarted")
	for _, o := range after[first:] {
		assert.Equal(t, http.StatusOK, o.status, "and stays recovered")
	}
	for i, s := range sessions {
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: s, hdr: map[string]string{"X-Test-Client": "10.1.0.1"}}).StatusCode,
			"session %d, minted before the restart, is honoured after it", i)
	}
}

// TestLoadRunWithFaults runs concurrent clients that sign in, use their
// sessions and sign out, for about a minute (SESSIONGATE_LOAD_DURATION;
// 10 s with -short), with one Redis restart and one upstream outage
// injected. Outside the fault windows no request may get a 5xx, and no
// session that was not signed out may be lost. It runs alone (not
// parallel), before the package's parallel tests, so that its load does not
// starve them.
func TestLoadRunWithFaults(t *testing.T) {
	d := time.Minute
	if testing.Short() {
		d = 10 * time.Second
	}
	if v, err := time.ParseDuration(os.Getenv("SESSIONGATE_LOAD_DURATION")); err == nil {
		d = v
	}
	e := newDurableEnv(t)

	type window struct{ from, to time.Time }
	var (
		mu                 sync.Mutex
		windows            []window
		served, in, out5xx atomic.Int64
		refused            atomic.Int64 // live sessions answered 401: lost
		crossed            int          // sessions live when Redis stopped
		faulting           atomic.Bool  // clients hold their sign-outs meanwhile
		byStatus           sync.Map
		live               = map[string]string{} // session -> client, for sessions not signed out
		stop               atomic.Bool
		wg                 sync.WaitGroup
	)
	// inWindow reports whether a request that ran from start to now
	// overlapped a fault window: it was in flight when the fault began, or
	// started before the window (and its grace) ended.
	inWindow := func(start time.Time) bool {
		end := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, w := range windows {
			if !end.Before(w.from) && !start.After(w.to) {
				return true
			}
		}
		return false
	}
	record := func(start time.Time, r resp, err error) {
		status := 0
		if err == nil {
			status = r.StatusCode
		}
		n, _ := byStatus.LoadOrStore(status, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch {
		case status >= 200 && status < 300:
			served.Add(1)
		case status >= 500 || status == 0:
			if inWindow(start) {
				in.Add(1)
			} else {
				out5xx.Add(1)
				t.Errorf("%d outside the fault windows at %s: %s", status, start.Format("15:04:05.000"), r.body)
			}
		}
	}
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := map[string]string{"X-Test-Client": fmt.Sprintf("10.2.0.%d", c)}
			session := ""
			for !stop.Load() {
				start := time.Now()
				switch {
				case session == "":
					r, err := e.try(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue(fmt.Sprintf("load%d", c), time.Hour), hdr: client})
					record(start, r, err)
					if err == nil && r.StatusCode == http.StatusCreated {
						session = r.Header.Get("X-Session-Token")
						mu.Lock()
						live[session] = client["X-Test-Client"]
						mu.Unlock()
					}
				case rand.IntN(50) == 0 && !faulting.Load():
					r, err := e.try(req{method: http.MethodDelete, path: "/auth/session", header: session, hdr: client})
					record(start, r, err)
					// A 204 also proves the session was still there. One that
					// failed is a 5xx the checks count.
					mu.Lock()
					delete(live, session)
					mu.Unlock()
					session = ""
				default:
					r, err := e.try(req{path: "/api/me", header: session, hdr: client})
					record(start, r, err)
					if err == nil && r.StatusCode == http.StatusUnauthorized {
						refused.Add(1)
						t.Errorf("a live session was refused: %s", r.body)
						mu.Lock()
						delete(live, session)
						mu.Unlock()
						session = ""
					}
				}
			}
		}()
	}

	fault := func(at time.Duration, length, grace time.Duration, begin, end func()) {
		time.Sleep(at)
		mu.Lock()
		w := window{from: time.Now()}
		windows = append(windows, w)
		mu.Unlock()
		begin()
		time.Sleep(length)
		end()
		mu.Lock()
		windows[len(windows)-1].to = time.Now().Add(grace)
		mu.Unlock()
	}
	// Requests that start in a window (or within its grace after) may fail.
	// The grace is 0: the service must recover at the first request after
	// the fault ends, however slow the machine, not within some time.
	// Sign-outs are held a little longer (settle), which asserts nothing.
	open := func() {
		faulting.Store(true)
		mu.Lock()
		defer mu.Unlock()
		windows[len(windows)-1].to = time.Now().Add(time.Hour)
	}
	settle := func(grace time.Duration) {
		time.Sleep(grace)
		faulting.Store(false)
	}
	start := time.Now()
	fault(d/3, time.Second, 0, func() {
		open()
		mu.Lock()
		crossed = len(live)
		mu.Unlock()
		e.redis.Stop()
	}, e.redis.Restart)
	settle(2 * time.Second)
	fault(2*d/3-time.Since(start), 2*time.Second, 0,
		func() { open(); e.fake.SetFault(providertest.Fault{Down: true}) }, func() { e.fake.SetFault(providertest.Fault{}) })
	settle(time.Second)
	time.Sleep(time.Until(start.Add(d)))
	stop.Store(true)
	wg.Wait()

	lost := int(refused.Load())
	for session, client := range live {
		if e.do(req{path: "/api/me", header: session, hdr: map[string]string{"X-Test-Client": client}}).StatusCode != http.StatusOK {
			lost++
		}
	}
	var counts []string
	byStatus.Range(func(k, v any) bool {
		counts = append(counts, fmt.Sprintf("%v: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(counts)
	t.Logf("load run of %s, 16 clients, one Redis restart, one upstream outage: %d requests served, 5xx in fault windows %d, "+
		"5xx outside them %d, sessions lost %d (%d were live across the Redis restart); by status %v",
		d, served.Load(), in.Load(), out5xx.Load(), lost, crossed, counts)
	assert.Zero(t, out5xx.Load(), "5xx outside the fault windows")
	assert.Zero(t, lost, "sessions lost")
	assert.Positive(t, served.Load())
	assert.Positive(t, crossed, "sessions were live across the Redis restart: the no-loss check was not vacuous")
}
