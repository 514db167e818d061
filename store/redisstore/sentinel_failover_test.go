package redisstore_test

import (
	"context"
	"fmt"
	"slices"
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

// writerPause is gracefulFailover's writers' pause between operations.
const writerPause = time.Millisecond

// failoverCount is what gracefulFailover measured.
type failoverCount struct {
	minted, ended int // mints and sign-outs the store acknowledged
	lost, undone  int // of those, sessions absent and sign-outs undone on the new primary
	failed        int // operations that failed (ErrUnavailable)
	// openEnds counts sign-outs that failed: their outcome is open (the
	// caller got a 503 and may try again), so their sessions count
	// neither as lost nor as undone; endedAnyway is how many of them
	// had ended on the new primary.
	openEnds, endedAnyway int
}

// gracefulFailover runs 4 writers on a store opened on url, minting
// sessions and signing every third one out, while Sentinels[0] runs
// SENTINEL FAILOVER on set; during, when set, runs meanwhile until the
// writers stop. Then it reads every acknowledged session on the new
// primary itself: what the old primary took after the promotion never
// reaches it (and is thrown away when the sentinels make the old primary
// its replica, some 8 s later, which the count need not wait for). A mint that reported a conflict counts as acknowledged
// when the session is there (the engine's rule: a retry found its own
// first run).
func gracefulFailover(t *testing.T, set *storetest.SentinelSet, url string, during func(stop <-chan struct{})) failoverCount {
	t.Helper()
	st := open(t, url, redisstore.Options{})
	ctx := context.Background()
	var (
		mu                sync.Mutex
		keys              []string
		isEnded           = map[string]bool{}
		openEnd           = map[string]bool{}
		failed            int
		firstErr, lastErr time.Time
	)
	reasons := map[string]int{}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reasons[err.Error()]++
		failed++
		if firstErr.IsZero() {
			firstErr = time.Now()
		}
		lastErr = time.Now()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				// A writer pauses between operations, so that the four
				// leave CPU to the package's other tests on a 2-core
				// machine: still a few thousand operations a run.
				select {
				case <-stop:
					return
				case <-time.After(writerPause):
				}
				tok := token(fmt.Sprintf("w%d-%d", w, i), "v")
				key, user := format.KeyOf(tok), fmt.Sprintf("p:w%d", w)
				err := st.Mint(ctx, backend.NewSession{Token: tok, Record: rec, Expires: time.Now().Add(time.Hour), User: user})
				if err == backend.ErrConflict {
					if s, lerr := st.Lookup(ctx, key); lerr == nil && s.Live() {
						err = nil
					}
				}
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
				if i%3 == 0 {
					err := st.End(ctx, backend.Ending{Key: key, User: user, Until: time.Now().Add(time.Hour)})
					mu.Lock()
					if err != nil {
						openEnd[key] = true
					} else {
						isEnded[key] = true
					}
					mu.Unlock()
					if err != nil {
						fail(err)
					}
				}
			}
		})
	}
	stopDuring := make(chan struct{})
	if during != nil {
		go during(stopDuring)
	}
	time.Sleep(300 * time.Millisecond)
	started := time.Now()
	old := set.Failover()
	next := set.WaitForNewPrimary(old)
	named := time.Since(started)
	time.Sleep(2 * time.Second) // writes go on after the switch
	close(stop)
	wg.Wait()
	close(stopDuring)
	c := failoverCount{minted: len(keys), ended: len(isEnded), failed: failed, openEnds: len(openEnd)}
	primary := set.Node(next)
	for _, k := range keys {
		raw, err := redis.Bytes(primary.Do("GET", "sg:s:"+k))
		if err != nil && err != redis.ErrNil {
			require.NoError(t, err)
		}
		s := format.Parse(raw)
		switch {
		case openEnd[k]:
			if s.Ended {
				c.endedAnyway++
			}
		case isEnded[k] && !s.Ended:
			c.undone++
		case !isEnded[k] && !s.Live():
			c.lost++
		}
	}
	window := time.Duration(0)
	if failed > 0 {
		window = lastErr.Sub(firstErr)
	}
	t.Logf("new primary named after %v; %d mints and %d sign-outs acknowledged; %d operations failed (ErrUnavailable), over %v; "+
		"%d of %d sessions lost, %d of %d sign-outs undone; %d sign-outs failed (%d of them took effect)",
		named.Round(time.Millisecond), c.minted, c.ended, c.failed, window.Round(time.Millisecond),
		c.lost, c.minted, c.undone, c.ended, c.openEnds, c.endedAnyway)
	for reason, n := range reasons {
		t.Logf("%d failed: %s", n, reason)
	}
	return c
}

// TestSentinelGracefulFailover: SENTINEL FAILOVER while writers mint
// sessions and sign some out, with 2 replicas and min-replicas-to-write
// 1, the URL naming every sentinel. Every mint and sign-out the store
// acknowledged is on the new primary afterwards: none lost, none undone.
func TestSentinelGracefulFailover(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{MinReplicasToWrite: 1})
	c := gracefulFailover(t, set, set.URL(), nil)
	assert.Zero(t, c.lost, "sessions lost")
	assert.Zero(t, c.undone, "sign-outs undone")
	assert.NotZero(t, c.ended)
}

// TestSentinelFailoverLedByAnUnlistedSentinel (#17, found in review): the
// URL names two of the three sentinels (a URL with fewer sentinels than
// the deployment is common) and the operator runs SENTINEL FAILOVER on
// the third. Only the leader announces +try-failover and
// +failover-state-*: the store must know it from the others (SENTINEL
// SENTINELS) and watch it too, and WAIT for every replica, so that a
// failover it does not hear of still loses nothing.
func TestSentinelFailoverLedByAnUnlistedSentinel(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{MinReplicasToWrite: 1})
	// set.URL() is redis://S0/0?master_name=...&addr=S1&addr=S2: start at S1 instead.
	url := strings.Replace(set.URL(), set.Sentinels[0].Addr+"/0", set.Sentinels[1].Addr+"/0", 1)
	url = strings.Replace(url, "&addr="+set.Sentinels[1].Addr, "", 1)
	require.NotContains(t, url, set.Sentinels[0].Addr)
	c := gracefulFailover(t, set, url, nil)
	assert.Zero(t, c.lost, "sessions lost")
	assert.Zero(t, c.undone, "sign-outs undone")
	assert.NotZero(t, c.ended)
}

// TestSentinelFailoverWithWatchersKilled (#17, found in review): CLIENT
// KILL TYPE pubsub on every sentinel, every 100 ms, while SENTINEL
// FAILOVER runs: the store hears few announcements, and must not confirm
// a write made while a watcher was down without asking its sentinel.
func TestSentinelFailoverWithWatchersKilled(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{MinReplicasToWrite: 1})
	var kills atomic.Int64
	c := gracefulFailover(t, set, set.URL(), func(stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, s := range set.Sentinels {
				if n, err := redis.Int(s.Do("CLIENT", "KILL", "TYPE", "pubsub")); err == nil {
					kills.Add(int64(n))
				}
			}
		}
	})
	t.Logf("%d watcher connections killed", kills.Load())
	assert.Zero(t, c.lost, "sessions lost")
	assert.Zero(t, c.undone, "sign-outs undone")
	assert.NotZero(t, c.ended)
}

// TestSentinelReplicasDown measures what the store's WAIT for every
// connected replica costs when replicas die: one killed (the primary
// keeps the other), then the second (no acknowledgement at all while
// the sentinels still list them, until they flag them down after
// down-after-milliseconds). Each phase must end with writes standing
// again, and every acknowledged session is on the primary.
func TestSentinelReplicasDown(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	st := open(t, set.URL(), redisstore.Options{})
	ctx := context.Background()
	primary := set.Node(set.Primary())
	var keys []string
	n := 0
	mint := func() (time.Duration, error) {
		n++
		tok := token(fmt.Sprintf("rd-%d", n), "v")
		start := time.Now()
		err := st.Mint(ctx, backend.NewSession{Token: tok, Record: rec, Expires: time.Now().Add(time.Hour), User: "p:rd"})
		if err == backend.ErrConflict {
			// A retry found its first run's session (the engine's rule).
			if s, lerr := st.Lookup(ctx, format.KeyOf(tok)); lerr == nil && s.Live() {
				err = nil
			}
		}
		if err == nil {
			keys = append(keys, format.KeyOf(tok))
		}
		return time.Since(start), err
	}

	var lat []time.Duration
	for range 300 {
		d, err := mint()
		require.NoError(t, err)
		lat = append(lat, d)
	}
	slices.Sort(lat)
	t.Logf("both replicas up: a mint (with WAIT for 2 replicas) takes %v (median), %v (99th percentile)",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))

	for _, phase := range []struct {
		name    string
		replica *storetest.Server
	}{{"one replica killed", set.Nodes[1]}, {"both replicas killed", set.Nodes[2]}} {
		require.NotEqual(t, primary, phase.replica)
		phase.replica.Stop()
		killed := time.Now()
		var failed, slow int
		var slowest, lastSlow time.Duration
		for time.Since(killed) < 2*time.Second {
			d, err := mint()
			slowest = max(slowest, d)
			if err != nil {
				require.ErrorIs(t, err, store.ErrUnavailable)
				failed++
			}
			if err != nil || d > 50*time.Millisecond {
				slow++
				lastSlow = time.Since(killed)
			}
		}
		_, err := mint()
		require.NoError(t, err, "%s: writes stand again", phase.name)
		t.Logf("%s: %d mints failed (ErrUnavailable) and %d were slow (over 50 ms, the slowest %v), the last %v after the kill",
			phase.name, failed, slow, slowest.Round(time.Millisecond), lastSlow.Round(time.Millisecond))
	}

	lost := 0
	for _, k := range keys {
		raw, err := redis.Bytes(primary.Do("GET", "sg:s:"+k))
		if err != nil || !format.Parse(raw).Live() {
			lost++
		}
	}
	assert.Zero(t, lost, "acknowledged sessions missing on the primary")
}
