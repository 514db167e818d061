package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// --- opCtx contract -------------------------------------------------------

// Once Err is non-nil, it must keep returning the same error
// (context.Context: "successive calls to Err return the same error").
// A deadline that passed while nobody called Done turns into Canceled at
// end; context.WithTimeout keeps DeadlineExceeded.
func TestReviewEOpCtxErrStableAfterDeadline(t *testing.T) {
	oc := newOpCtx(context.Background(), time.Nanosecond)
	for oc.Err() == nil {
	}
	before := oc.Err()
	oc.end()
	after := oc.Err()
	t.Logf("Err before end: %v, after end: %v", before, after)
	assert.ErrorIs(t, before, context.DeadlineExceeded)
	assert.Equal(t, before, after, "Err changed once non-nil")

	std, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	<-std.Done()
	cancel()
	assert.ErrorIs(t, std.Err(), context.DeadlineExceeded, "the standard library's behaviour")
}

// context.Cause must not be nil for a context whose Err is not.
func TestReviewEOpCtxCause(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background()) // a cancelCtx, as a request's is
	defer cancel()
	oc := newOpCtx(parent, time.Nanosecond)
	defer oc.end()
	for oc.Err() == nil {
	}
	<-oc.Done()
	t.Logf("Err=%v Cause=%v", oc.Err(), context.Cause(oc))
	assert.Error(t, context.Cause(oc), "Cause of an ended context")
}

// Done, Err, left and end from many goroutines at once (run with -race);
// a derived context and an AfterFunc end with the operation.
func TestReviewEOpCtxConcurrent(t *testing.T) {
	for range 200 {
		oc := newOpCtx(context.Background(), time.Hour)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				switch i {
				case 0:
					<-oc.Done()
				case 1:
					for oc.Err() == nil {
						runtime.Gosched()
					}
				case 2:
					oc.left()
				case 3:
					oc.end()
				}
			})
		}
		wg.Wait()
		require.ErrorIs(t, oc.Err(), context.Canceled)
		child, stop := context.WithCancel(oc)
		<-child.Done()
		stop()
		fired := make(chan struct{})
		context.AfterFunc(oc, func() { close(fired) })
		<-fired
	}
}

// --- turns ------------------------------------------------------------------

type rveLoad struct {
	ok, unavailable, other atomic.Int64
	mu                     sync.Mutex
	bad                    []string
}

func (l *rveLoad) note(err error) {
	switch {
	case err == nil:
		l.ok.Add(1)
		return
	case errors.Is(err, store.ErrUnavailable):
		l.unavailable.Add(1)
	default:
		l.other.Add(1)
	}
	if s := err.Error(); strings.Contains(s, "exhausted") || !errors.Is(err, store.ErrUnavailable) {
		l.mu.Lock()
		if len(l.bad) < 5 {
			l.bad = append(l.bad, s)
		}
		l.mu.Unlock()
	}
}

// run runs clients goroutines of rounds operations each (mint, lookup,
// touch) on st, with ctx.
func (l *rveLoad) run(ctx context.Context, st store.Store, tag string, clients, rounds int) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range rounds {
				tok := ctok(fmt.Sprintf("%s-%d-%d", tag, c, i), "v")
				err := st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:" + tag})
				if errors.Is(err, backend.ErrConflict) {
					err = nil
				}
				l.note(err)
				_, err = st.Lookup(ctx, "k-"+tok)
				l.note(err)
				l.note(st.Touch(ctx, tok, crec))
			}
		})
	}
	wg.Wait()
}

func reviewOpen(t *testing.T, url string, opts Options) store.Store {
	t.Helper()
	st, err := Open(url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	return st
}

// Many goroutines on a pool of 1 or 2: no error (Timeout is generous),
// never "pool exhausted", at most PoolSize connections per server.
func TestReviewEPoolExhaustionSingle(t *testing.T) {
	for _, size := range []int{1, 2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			srv := storetest.Start(t)
			before := rveConnsOf(t, srv) + 1 // the count includes this INFO's connection
			st := reviewOpen(t, srv.URL, Options{PoolSize: size, Timeout: 20 * time.Second})
			var l rveLoad
			l.run(context.Background(), st, "single", 64, 20)
			got := rveConnsOf(t, srv) - before
			t.Logf("size %d: ok %d unavailable %d other %d, connections %d; %v", size, l.ok.Load(), l.unavailable.Load(), l.other.Load(), got, l.bad)
			assert.Zero(t, l.unavailable.Load()+l.other.Load())
			assert.LessOrEqual(t, got, size)
		})
	}
}

func TestReviewEPoolExhaustionSentinel(t *testing.T) {
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	url := "redis://" + set.Sentinels[0].Addr + "?master_name=" + set.Master
	for _, size := range []int{1, 2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			before := rveConnsOf(t, set.Nodes[0]) + 1
			st := reviewOpen(t, url, Options{PoolSize: size, Timeout: 20 * time.Second})
			var l rveLoad
			l.run(context.Background(), st, fmt.Sprint("sent", size), 64, 10)
			got := rveConnsOf(t, set.Nodes[0]) - before
			t.Logf("size %d: ok %d unavailable %d other %d, primary connections %d; %v", size, l.ok.Load(), l.unavailable.Load(), l.other.Load(), got, l.bad)
			assert.Zero(t, l.unavailable.Load()+l.other.Load())
			assert.LessOrEqual(t, got, size)
		})
	}
}

func TestReviewEPoolExhaustionCluster(t *testing.T) {
	c := storetest.StartCluster(t)
	addrs := c.Addrs()
	url := "redis://" + addrs[0] + "?cluster=true"
	for _, a := range addrs[1:] {
		url += "&addr=" + a
	}
	for _, size := range []int{1, 2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			before := map[string]int{}
			for _, a := range addrs {
				before[a] = rveConns(t, a) + 1
			}
			st := reviewOpen(t, url, Options{PoolSize: size, Timeout: 20 * time.Second})
			var l rveLoad
			l.run(context.Background(), st, fmt.Sprint("cl", size), 64, 10)
			t.Logf("size %d: ok %d unavailable %d other %d; %v", size, l.ok.Load(), l.unavailable.Load(), l.other.Load(), l.bad)
			assert.Zero(t, l.unavailable.Load()+l.other.Load())
			for _, a := range addrs {
				got := rveConns(t, a) - before[a]
				t.Logf("node %s: %d connections", a, got)
				// +1: redisc's layout read at Open, a connection of its
				// own on one node (as before ea24349).
				assert.LessOrEqual(t, got, size+1, "node %s", a)
			}
		})
	}
}

// rveConnsOf is connectionsReceived less the INFO's own connection.
func rveConnsOf(t *testing.T, srv *storetest.Server) int {
	t.Helper()
	return connectionsReceived(t, srv) - 1
}

func rveConns(t *testing.T, addr string) int {
	t.Helper()
	return rveConnsOf(t, &storetest.Server{Addr: addr, URL: "redis://" + addr})
}

// A frozen Redis: every operation ends by its caller's deadline with
// ErrUnavailable (never "exhausted"), no more than PoolSize connections,
// and the store works again once Redis answers.
func TestReviewEFrozenRedis(t *testing.T) {
	srv := storetest.Start(t)
	p := startProxy(t, srv.Addr)
	st := reviewOpen(t, "redis://"+p.ln.Addr().String(), Options{PoolSize: 2, Timeout: 2 * time.Second})
	before := rveConnsOf(t, srv) + 1 // the count includes this INFO's connection
	g0 := runtime.NumGoroutine()
	p.freeze()
	var l rveLoad
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	l.run(ctx, st, "frozen", 16, 2)
	cancel()
	t.Logf("frozen: ok %d unavailable %d other %d; %v", l.ok.Load(), l.unavailable.Load(), l.other.Load(), l.bad)
	assert.Zero(t, l.other.Load())
	assert.Empty(t, l.bad)
	p.thaw()
	var after rveLoad
	after.run(context.Background(), st, "thawed", 8, 5)
	t.Logf("thawed: ok %d unavailable %d other %d; %v", after.ok.Load(), after.unavailable.Load(), after.other.Load(), after.bad)
	assert.Zero(t, after.unavailable.Load()+after.other.Load())
	got := rveConnsOf(t, srv) - before
	t.Logf("connections through the freeze: %d", got)
	time.Sleep(100 * time.Millisecond)
	t.Logf("goroutines: %d before, %d after", g0, runtime.NumGoroutine())
}

// Redis restarted under load: errors are ErrUnavailable (never
// "exhausted"), the store recovers, connections stay within the pool.
func TestReviewERedisRestartUnderLoad(t *testing.T) {
	srv := storetest.Start(t)
	st := reviewOpen(t, srv.URL, Options{PoolSize: 2, Timeout: 3 * time.Second})
	var l rveLoad
	done := make(chan struct{})
	go func() { defer close(done); l.run(context.Background(), st, "restart", 16, 60) }()
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	<-done
	t.Logf("restart: ok %d unavailable %d other %d; %v", l.ok.Load(), l.unavailable.Load(), l.other.Load(), l.bad)
	assert.Zero(t, l.other.Load())
	assert.Empty(t, l.bad)
	before := rveConnsOf(t, srv) + 1 // the count includes this INFO's connection
	var after rveLoad
	after.run(context.Background(), st, "after", 16, 5)
	assert.Zero(t, after.unavailable.Load()+after.other.Load(), "%v", after.bad)
	got := rveConnsOf(t, srv) - before
	t.Logf("connections after the restart's load: %d", got)
	assert.LessOrEqual(t, got, 2)
}

// Close while operations are in flight (and waiting for turns): each
// returns, with ErrUnavailable, and no goroutine is left.
func TestReviewECloseInFlight(t *testing.T) {
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprint("near=", near), func(t *testing.T) {
			srv := storetest.Start(t)
			g0 := runtime.NumGoroutine()
			opts := Options{PoolSize: 1, Timeout: 5 * time.Second}
			if near {
				opts.NearCache = &NearCache{}
			}
			st, err := Open(srv.URL, opts)
			require.NoError(t, err)
			var l rveLoad
			var stop atomic.Bool
			var wg sync.WaitGroup
			for c := range 16 {
				wg.Go(func() {
					for i := 0; !stop.Load(); i++ {
						_, err := st.Lookup(context.Background(), fmt.Sprintf("c-%d-%d", c, i))
						l.note(err)
						if err != nil {
							return
						}
					}
				})
			}
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, st.(io.Closer).Close())
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(30 * time.Second):
				stop.Store(true)
				t.Fatal("operations did not return after Close")
			}
			stop.Store(true)
			_, err = st.Lookup(context.Background(), "after-close")
			t.Logf("after Close: %v", err)
			assert.ErrorIs(t, err, store.ErrUnavailable)
			t.Logf("ok %d unavailable %d other %d; %v", l.ok.Load(), l.unavailable.Load(), l.other.Load(), l.bad)
			assert.Zero(t, l.other.Load())
			assert.Empty(t, l.bad)
			if !assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= g0+1 /* +1: Eventually's own */ }, 10*time.Second, 10*time.Millisecond) {
				buf := make([]byte, 1<<20)
				t.Logf("goroutines: %d before Open, %d after Close:\n%s", g0, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// A write that waits for a Sentinel failover to end (guard.before) holds
// no connection, but now holds a turn: with every turn held by such
// writes, a read (which does not wait for failovers) waits behind them
// and fails, where before ea24349 it was served at once.
func TestReviewEWriteWaitingForFailoverStarvesReads(t *testing.T) {
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	url := "redis://" + set.Sentinels[0].Addr + "?master_name=" + set.Master
	st := reviewOpen(t, url, Options{PoolSize: 1, Timeout: 3 * time.Second})
	s := st.(*openStore).sentinels
	ctx := context.Background()
	_, err := st.Lookup(ctx, "warm")
	require.NoError(t, err)

	// A failover under way, as a sentinel's +failover-state announcement
	// records it (kept announced while the test runs).
	stop := make(chan struct{})
	var stopOnce sync.Once
	var held sync.WaitGroup
	held.Go(func() {
		for {
			s.mu.Lock()
			if s.failing == nil {
				s.failing = map[string]time.Time{}
			}
			s.failing["rve"] = time.Now()
			s.mu.Unlock()
			select {
			case <-stop:
				s.mu.Lock()
				delete(s.failing, "rve")
				s.mu.Unlock()
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	end := func() { stopOnce.Do(func() { close(stop) }); held.Wait() }
	defer end()

	wrote := make(chan error, 1)
	go func() { wrote <- st.Touch(ctx, ctok("w", "v"), crec) }()
	time.Sleep(200 * time.Millisecond) // the write is waiting in before

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = st.Lookup(rctx, "read-during-failover")
	t.Logf("read while a write waits for the failover: %v", err)
	assert.NoError(t, err, "a read does not wait for a failover")
	end()
	t.Logf("the write: %v", <-wrote)
}
