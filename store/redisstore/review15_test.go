package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// review15Mint mints a session for name with data "data-"+name and returns its
// token.
func review15Mint(t *testing.T, st store.Store, name string) string {
	t.Helper()
	tok := token("rvc-"+name, "v")
	err := st.Mint(context.Background(), backend.NewSession{Token: tok, Record: rec, Data: []byte("data-" + name), Expires: time.Now().Add(time.Hour), User: "p:rvc"})
	require.NoError(t, err)
	return tok
}

// rvcData returns the scs data stored for tok, via Lookup.
func rvcData(st store.Store, tok string) (string, error) {
	s, err := st.Lookup(context.Background(), format.KeyOf(tok))
	if err != nil {
		return "", err
	}
	return string(s.Data), nil
}

// sleepServer runs DEBUG SLEEP secs on srv on a connection of its own and
// returns a channel closed when it answered; it waits until the server
// runs it (its PING stops answering).
func sleepServer(t *testing.T, srv *storetest.Server, secs string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Do("DEBUG", "SLEEP", secs)
	}()
	// Sequencing only: let the DEBUG SLEEP reach the server.
	time.Sleep(50 * time.Millisecond)
	return done
}

// A command whose reply comes after the operation's read deadline must
// never leave its connection in the pool with that reply still to come:
// the next operation on it would read the previous one's reply (a
// session served to another user). Pool of one, so any reuse is certain.
func TestReview15ReadTimeoutNoReplyDesync(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--enable-debug-command", "yes")
	st, err := redisstore.Open(srv.URL, redisstore.Options{PoolSize: 1, Timeout: 150 * time.Millisecond})
	require.NoError(t, err)
	a, b := review15Mint(t, st, "a"), review15Mint(t, st, "b")
	before := connectionsReceived(t, srv)

	for round := range 3 {
		done := sleepServer(t, srv, "0.5")
		_, err := rvcData(st, a)
		assert.ErrorIs(t, err, store.ErrUnavailable, "round %d: a lookup during DEBUG SLEEP times out", round)
		<-done
		got, err := rvcData(st, b)
		require.NoError(t, err)
		assert.Equal(t, "data-b", got, "round %d: b's lookup reads b's reply, not a's late one", round)
		got, err = rvcData(st, a)
		require.NoError(t, err)
		assert.Equal(t, "data-a", got, "round %d", round)
	}
	t.Logf("connections opened across 3 timeouts: %d", connectionsReceived(t, srv)-before)
}

// The same on the Sentinel path, where a write pipelines its script and
// WAIT: a timeout mid-pipeline must not leave a reply behind.
func TestReview15SentinelTimeoutNoReplyDesync(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	st, err := redisstore.Open(set.URL(), redisstore.Options{PoolSize: 1, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { st.(interface{ Close() error }).Close() })
	a := review15Mint(t, st, "sa")
	primary := set.Node(set.Primary())

	for round := range 2 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := primary.Do("CLIENT", "PAUSE", "600", "ALL")
			require.NoError(t, err)
		}()
		<-done
		time.Sleep(10 * time.Millisecond)
		tok := token(fmt.Sprintf("rvc-s-%d", round), "v")
		merr := st.Mint(context.Background(), backend.NewSession{Token: tok, Record: rec, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:rvc"})
		t.Logf("round %d: mint during CLIENT PAUSE: %v", round, merr)
		time.Sleep(700 * time.Millisecond)
		got, err := rvcData(st, a)
		require.NoError(t, err)
		assert.Equal(t, "data-sa", got, "round %d: a's lookup reads a's reply", round)
	}
}

// A pool of 1–4 under 500 concurrent operations: every one answers or
// fails with ErrUnavailable, none hangs, and Redis accepts no more
// connections than the pool's size.
func TestReview15BoundedPoolUnder500(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	for _, size := range []int{1, 4} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			st, err := redisstore.Open(srv.URL, redisstore.Options{PoolSize: size, Timeout: 200 * time.Millisecond})
			require.NoError(t, err)
			a := review15Mint(t, st, fmt.Sprintf("p%d", size))
			before := connectionsReceived(t, srv)
			var ok, unavailable, other atomic.Int64
			var wg sync.WaitGroup
			for i := range 500 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					if i%5 == 0 {
						err = st.Touch(context.Background(), a, rec)
					} else {
						var got string
						got, err = rvcData(st, a)
						if err == nil && got != fmt.Sprintf("data-p%d", size) {
							other.Add(1)
							return
						}
					}
					switch {
					case err == nil:
						ok.Add(1)
					case strings.Contains(err.Error(), "unavailable"):
						unavailable.Add(1)
					default:
						other.Add(1)
						t.Log(err)
					}
				}()
			}
			finishes(t, func() error { wg.Wait(); return nil })
			opened := connectionsReceived(t, srv) - before
			t.Logf("pool %d: %d ok, %d unavailable, %d other; %d connections opened", size, ok.Load(), unavailable.Load(), other.Load(), opened)
			assert.Zero(t, other.Load())
			assert.LessOrEqual(t, opened, size)
		})
	}
}

// Redis restarted under load with a bounded pool: the dead connections
// are not handed out for ever; operations succeed again.
func TestReview15RestartUnderLoadBoundedPool(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--appendonly", "yes")
	st, err := redisstore.Open(srv.URL, redisstore.Options{PoolSize: 4, Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	a := review15Mint(t, st, "r")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fails atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := rvcData(st, a); err != nil {
					fails.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("failures across the restart: %d", fails.Load())
	// After: every one of 20 operations succeeds.
	for i := range 20 {
		got, err := rvcData(st, a)
		require.NoError(t, err, "op %d after restart", i)
		require.Equal(t, "data-r", got)
	}
}

// A caller's context already cancelled, or with a deadline shorter than
// the Timeout, or ending while a command runs.
func TestReview15CallerContexts(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--enable-debug-command", "yes")
	st, err := redisstore.Open(srv.URL, redisstore.Options{PoolSize: 1, Timeout: 5 * time.Second})
	require.NoError(t, err)
	a, b := review15Mint(t, st, "ca"), review15Mint(t, st, "cb")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = st.Lookup(cancelled, format.KeyOf(a))
	assert.ErrorIs(t, err, store.ErrUnavailable)

	done := sleepServer(t, srv, "0.6")
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = st.Lookup(short, format.KeyOf(a))
	cancel2()
	assert.ErrorIs(t, err, store.ErrUnavailable, "a caller's deadline shorter than Timeout")
	<-done
	got, err := rvcData(st, b)
	require.NoError(t, err)
	assert.Equal(t, "data-cb", got)

	// Cancelled (client gone) while the command runs: seen at the next
	// command; the reply must still not be left behind.
	done = sleepServer(t, srv, "0.4")
	cctx, cancel3 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel3() }()
	_, err = st.Lookup(cctx, format.KeyOf(a))
	t.Logf("lookup cancelled mid-command: %v", err)
	<-done
	got, err = rvcData(st, b)
	require.NoError(t, err)
	assert.Equal(t, "data-cb", got)
	_ = redis.ErrNil
}

// connectionsReceived is INFO stats' total_connections_received on srv.
func connectionsReceived(t *testing.T, srv *storetest.Server) int {
	t.Helper()
	info, err := redis.String(srv.Do("INFO", "stats"))
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			var n int
			fmt.Sscan(v, &n)
			return n - 1 // this INFO's own connection
		}
	}
	t.Fatal("no total_connections_received")
	return 0
}

// Sentinel: after SCRIPT FLUSH on the primary, a mint and a touch fall
// back to EVAL and are still on both replicas when they answer; with a
// replica stopped (the sentinels still listing it), a mint fails with
// ErrUnavailable within its deadline, and succeeds again later.
func TestReview15SentinelScriptFlushAndReplicaDown(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	st, err := redisstore.Open(set.URL(), redisstore.Options{PoolSize: 2, Timeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { st.(interface{ Close() error }).Close() })
	review15Mint(t, st, "warm")
	primaryAddr := set.Primary()
	primary := set.Node(primaryAddr)
	_, err = primary.Do("SCRIPT", "FLUSH")
	require.NoError(t, err)
	tok := review15Mint(t, st, "flushed")
	key := "sg:s:" + format.KeyOf(tok)
	for _, n := range set.Nodes {
		v, err := redis.Bytes(n.Do("GET", key))
		require.NoError(t, err, "on %s (primary %v): the mint was confirmed, so every replica has it", n.Addr, n.Addr == primaryAddr)
		assert.NotEmpty(t, v)
	}
	_, err = primary.Do("SCRIPT", "FLUSH")
	require.NoError(t, err)
	assert.NoError(t, st.Touch(context.Background(), tok, rec), "touch after SCRIPT FLUSH")

	var replica *storetest.Server
	for _, n := range set.Nodes {
		if n.Addr != primaryAddr {
			replica = n
			break
		}
	}
	replica.Stop()
	start := time.Now()
	err = finishes(t, func() error {
		return st.Mint(context.Background(), backend.NewSession{Token: token("rvc-down", "v"), Record: rec, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:rvc"})
	})
	t.Logf("mint with a replica just stopped: %v after %v", err, time.Since(start).Round(time.Millisecond))
	var okAfter bool
	for range 60 { // until the sentinels see the replica down: a count, whatever the machine's speed
		err = st.Mint(context.Background(), backend.NewSession{Token: token("rvc-down2", "v"), Record: rec, Data: []byte("d"), Expires: time.Now().Add(time.Hour), User: "p:rvc"})
		// An earlier try that timed out waiting for the replica may have
		// landed: this token's key then holds it (a conflict).
		if err == nil || errors.Is(err, backend.ErrConflict) {
			okAfter = true
			break
		}
		t.Logf("mint later: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
	assert.True(t, okAfter, "mints succeed once the sentinels see the replica down")
}

// A write larger than the socket buffers to a Redis that stopped reading
// (SIGSTOP, as a frozen VM or a partition without RST): the operation's
// deadline must still bound it (the connection's 30 s write timeout is a
// backstop only). Control: the same pool with connections that only
// support DoContext (redigo's goroutine closes the connection at the
// deadline).
func TestReview15LargeWriteToStalledRedisHonoursDeadline(t *testing.T) {
	t.Parallel()
	for _, size := range []int{256 << 10, 4 << 20, 32 << 20} {
		for _, wrapped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dKiB/doContextOnly=%v", size>>10, wrapped), func(t *testing.T) {
				t.Parallel()
				srv := storetest.Start(t, "--loglevel", "warning")
				var r *recorder
				if wrapped {
					r = &recorder{}
				}
				st := redisstore.New(redisPool(t, srv, r, nil), redisstore.Options{Timeout: 300 * time.Millisecond})
				tok := review15Mint(t, st, "big")
				resume := srv.Stall()
				defer resume()
				big := make([]byte, size)
				start := time.Now()
				err := finishes(t, func() error {
					return st.(committer).CommitCtx(context.Background(), tok, big, time.Now().Add(time.Hour))
				})
				took := time.Since(start)
				t.Logf("CommitCtx of %d KiB to a stalled Redis, Timeout 300ms: %v after %v", size>>10, err, took.Round(time.Millisecond))
				assert.ErrorIs(t, err, store.ErrUnavailable)
			})
		}
	}
}
