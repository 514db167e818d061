package redisstore

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// errorStat returns the count of errorstat_<code> in srv's INFO errorstats.
func errorStat(t *testing.T, srv *storetest.Server, code string) int {
	t.Helper()
	info, err := redis.String(srv.Do("INFO", "errorstats"))
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "errorstat_"+code+":count="); ok {
			n := 0
			for _, c := range v {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

// Review G: on Sentinel, a transaction whose queued command Redis refuses
// with NOREPLICAS (a new primary whose replicas are still attaching,
// min-replicas-to-write) must be retried as the mint's script is
// (guard.again lists NOREPLICAS). Since 0e69b08 transaction reads every
// reply with Do("") and only looks at EXEC's, which is EXECABORT: the
// NOREPLICAS (the QUEUED slot's error, which redigo's Do("EXEC") used to
// return) is lost, again() does not know EXECABORT, and End fails at once.
func TestReviewGSentinelEndNoReplicasRetried(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	st, err := Open(set.URL(), Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	ctx := context.Background()
	require.NoError(t, st.Check(ctx, make([]byte, 32), true))

	primary := set.Node(set.Primary())
	// More replicas than there are: every write is refused, NOREPLICAS.
	_, err = primary.Do("CONFIG", "SET", "min-replicas-to-write", "3")
	require.NoError(t, err)
	before := errorStat(t, primary, "NOREPLICAS")
	lifted := make(chan struct{})
	go func() {
		defer close(lifted)
		for range 2000 {
			if errorStat(t, primary, "NOREPLICAS") > before {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		primary.Do("CONFIG", "SET", "min-replicas-to-write", "0")
	}()
	err = st.End(ctx, backend.Ending{Key: "rvg-noreplicas", User: "rvg-user", Until: time.Now().Add(time.Hour)})
	<-lifted
	t.Logf("End while the primary lacked replicas: %v (NOREPLICAS seen %d, EXECABORT seen %d)",
		err, errorStat(t, primary, "NOREPLICAS")-before, errorStat(t, primary, "EXECABORT"))
	assert.NoError(t, err, "a NOREPLICAS refusal is retried until the replicas attach, as for a mint")
	v, _ := redis.String(primary.Do("GET", sessionPrefix+"rvg-noreplicas"))
	assert.NotEmpty(t, v, "the sign-out mark was written")
}

// Review G: no replica acknowledges the sign-out (WAIT answers 0, the
// replicas detached): End must not answer done while the mark is on the
// primary only; once they attach again, the retry (SET sg:health, then
// WAIT, pipelined after a second MULTI...EXEC: two replies after EXEC's)
// confirms it and End succeeds.
func TestReviewGSentinelEndWaitsForReplicas(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	primary := set.Node(set.Primary())
	var replicas []*storetest.Server
	for _, n := range set.Nodes {
		if n != primary {
			replicas = append(replicas, n)
		}
	}
	ctx := context.Background()

	// Short deadline, replicas detached throughout: an error, never done.
	short, err := Open(set.URL(), Options{Timeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { short.(io.Closer).Close() })
	require.NoError(t, short.Check(ctx, make([]byte, 32), true))
	for _, r := range replicas {
		_, err := r.Do("REPLICAOF", "NO", "ONE")
		require.NoError(t, err)
	}
	err = short.End(ctx, backend.Ending{Key: "rvg-unacked", User: "rvg-user", Until: time.Now().Add(time.Hour)})
	t.Logf("End with no replica attached: %v", err)
	assert.Error(t, err, "a sign-out no replica acknowledged is not done")

	// Replicas attach again after the first WAIT: the retry confirms.
	long, err := Open(set.URL(), Options{Timeout: 20 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { long.(io.Closer).Close() })
	waits := commandCalls(t, primary, "wait")
	host, port, _ := strings.Cut(primary.Addr, ":")
	go func() {
		for range 5000 {
			if commandCalls(t, primary, "wait") > waits {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		for _, r := range replicas {
			r.Do("REPLICAOF", host, port)
		}
	}()
	err = long.End(ctx, backend.Ending{Key: "rvg-retried", User: "rvg-user", Until: time.Now().Add(time.Hour)})
	t.Logf("End after the replicas came back: %v (WAITs %d)", err, commandCalls(t, primary, "wait")-waits)
	require.NoError(t, err)
	for _, r := range append(replicas, primary) {
		v, _ := redis.String(r.Do("GET", sessionPrefix+"rvg-retried"))
		assert.NotEmpty(t, v, "the mark is on %s", r.Addr)
	}
}

// Review G: the reply counting of a transaction's retry on Sentinel
// (MULTI's OK, each QUEUED, EXEC's array, then SET sg:health's OK and
// WAIT's count), with several ends (marks, a DEL of an end already past,
// index removals) in one transaction. The retry is forced through the
// first attempt meeting a connection that died, as run retries it.
func TestReviewGSentinelEndRetryReplies(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	primary := set.Node(set.Primary())
	st, err := Open(set.URL(), Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { st.(io.Closer).Close() })
	ctx := context.Background()
	require.NoError(t, st.Check(ctx, make([]byte, 32), true))
	_, err = primary.Do("DEL", healthKey)
	require.NoError(t, err)
	sets := commandCalls(t, primary, "set")
	// The store's idle connection dies under it: End's first attempt
	// finds it dead, and its retry runs on a new one.
	killed, err := redis.Int(primary.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
	require.NoError(t, err)
	require.Positive(t, killed, "the store's idle connection was killed")
	err = st.End(ctx,
		backend.Ending{Key: "rvg-r1", User: "rvg-u", Until: time.Now().Add(time.Hour), Mark: "rvg-m1"},
		backend.Ending{Key: "rvg-r2", User: "rvg-u", Until: time.Now().Add(-time.Hour)},
		backend.Ending{Key: "rvg-r3", Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	t.Logf("SETs: %d", commandCalls(t, primary, "set")-sets)
	n, err := redis.Int(primary.Do("EXISTS", healthKey))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the retry wrote sg:health before its WAIT")
	for _, k := range []string{"rvg-r1", "rvg-m1", "rvg-r3"} {
		v, _ := redis.String(primary.Do("GET", sessionPrefix+k))
		assert.NotEmpty(t, v, k)
	}
	// And a WRONGTYPE inside EXEC (the user's index is a string): an
	// error, not done, on the retry path too.
	_, err = primary.Do("SET", userPrefix+"rvg-wrong", "x")
	require.NoError(t, err)
	_, err = primary.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
	require.NoError(t, err)
	err = st.End(ctx, backend.Ending{Key: "rvg-r4", User: "rvg-wrong", Until: time.Now().Add(time.Hour)})
	t.Logf("End with a WRONGTYPE index: %v", err)
	assert.Error(t, err)
}

// Review G: sign-outs (End, confirmed by a WAIT pipelined after EXEC)
// running through a graceful failover and a crash of the primary: every
// End that answered done has its mark on the new primary; none answers
// done and loses it. Also with a strict near cache.
func TestReviewGSentinelEndThroughFailover(t *testing.T) {
	t.Parallel()
	for _, kill := range []bool{false, true} {
		t.Run(map[bool]string{false: "graceful", true: "crash"}[kill], func(t *testing.T) {
			t.Parallel()
			set := storetest.StartSentinel(t, storetest.SentinelConfig{})
			st, err := Open(set.URL(), Options{Timeout: 30 * time.Second, NearCache: &NearCache{Strict: true}})
			require.NoError(t, err)
			t.Cleanup(func() { st.(io.Closer).Close() })
			ctx := context.Background()
			require.NoError(t, st.Check(ctx, make([]byte, 32), true))

			const workers = 4
			var (
				mu   sync.Mutex
				done []string
				errs []error
				stop atomic.Bool
				wg   sync.WaitGroup
			)
			for w := range workers {
				wg.Go(func() {
					for i := 0; !stop.Load(); i++ {
						key := fmt.Sprintf("rvg-fo-%d-%d", w, i)
						err := st.End(ctx, backend.Ending{Key: key, User: "rvg-fo", Until: time.Now().Add(time.Hour), Mark: key + "-m"})
						mu.Lock()
						if err == nil {
							done = append(done, key)
						} else {
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				})
			}
			for {
				mu.Lock()
				n := len(done)
				mu.Unlock()
				if n >= 20 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			var old string
			if kill {
				old = set.KillPrimary()
			} else {
				old = set.Failover()
			}
			now := set.WaitForNewPrimary(old)
			// Some more sign-outs on the new primary, then stop.
			mu.Lock()
			n := len(done)
			mu.Unlock()
			for {
				mu.Lock()
				m := len(done)
				mu.Unlock()
				if m >= n+20 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			primary := set.Node(now)
			var lost []string
			for _, k := range done {
				for _, key := range []string{k, k + "-m"} {
					if v, _ := redis.String(primary.Do("GET", sessionPrefix+key)); v == "" {
						lost = append(lost, key)
					}
				}
			}
			t.Logf("%d ends done, %d failed (first: %v); lost on the new primary: %d", len(done), len(errs), first(errs), len(lost))
			assert.Empty(t, lost, "an End that answered done lost its mark")
		})
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// Review G: a Cluster store whose seeds never answered with a layout
// (Open returned it with the reason), once closed, still dials the seeds
// on every Check (readLayout -> whyNoLayout dials each StartupNode with
// redis.DialContext, outside every pool) and from refreshSoon's goroutine,
// and answers the old reason, not "the store is closed".
func TestReviewGClusterClosedBeforeLayoutStillDials(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close() // a seed that hangs up: no layout
		}
	}()
	st, err := Open("redis://"+ln.Addr().String()+"?cluster=true", Options{Timeout: 2 * time.Second})
	require.NotNil(t, st, "Open returns the store with the reason: %v", err)
	t.Logf("Open: %v", err)
	require.NoError(t, st.(io.Closer).Close())
	before := accepted.Load()
	ctx := context.Background()
	errCheck := st.Check(ctx, make([]byte, 32), false)
	_, errLookup := st.Lookup(ctx, "rvg-closed")
	t.Logf("after Close: Check: %v; Lookup: %v; dials after Close: %d", errCheck, errLookup, accepted.Load()-before)
	assert.Zero(t, accepted.Load()-before, "nothing is dialled after Close")
	for _, err := range []error{errCheck, errLookup} {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the store is closed")
	}
}
