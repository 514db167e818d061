package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

var (
	ctok = backendtest.Token
	crec = backendtest.Record
)

// clusterStores counts the stores of the tests, for their key prefixes.
var clusterStores atomic.Int64

// newClusterTestStore returns a store on c whose keys start with a prefix
// of its own, so that the tests of one cluster do not meet.
func newClusterTestStore(t *testing.T, c *storetest.Cluster, opts Options) *clusterStore {
	t.Helper()
	st, err := startCluster(c.Addrs(), []redis.DialOption{
		redis.DialConnectTimeout(2 * time.Second), redis.DialReadTimeout(30 * time.Second), redis.DialWriteTimeout(30 * time.Second),
	}, opts)
	require.NoError(t, err)
	st.prefix = "t" + strconv.FormatInt(clusterStores.Add(1), 10) + ":"
	t.Cleanup(st.close)
	return st
}

// One cluster serves the tests that leave it whole: the contract, the
// key layout and its cost, the protocol's steps, races and a resharding.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := storetest.StartCluster(t)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	t.Run("Contract", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backend.Backend { return newClusterTestStore(t, c, Options{}) })
	})
	t.Run("SpreadAndOneGet", func(t *testing.T) { testClusterSpreadAndOneGet(t, c) })
	t.Run("CrashBetweenSteps", func(t *testing.T) { testClusterCrashBetweenSteps(t, c) })
	t.Run("ContinuationAndSignOut", func(t *testing.T) { testClusterContinuationAndSignOut(t, c) })
	t.Run("ConcurrentMintsOfOneCredential", func(t *testing.T) { testClusterConcurrentMints(t, c) })
	t.Run("Resharding", func(t *testing.T) { testClusterResharding(t, c) })
	t.Run("LimitRace", func(t *testing.T) { testClusterLimitRace(t, c) })
	t.Run("LimitStoppedBeforeItsCount", func(t *testing.T) { testClusterLimitStopped(t, c) })
	t.Run("ListPipelinesPerNode", func(t *testing.T) { testClusterListPipelines(t, c) })
	t.Run("ListPageCost", func(t *testing.T) { testClusterListPageCost(t, c) })
	t.Run("SeedsAnswerLater", func(t *testing.T) { testClusterSeedsAnswerLater(t, c) })
	t.Run("MintRoundTrips", func(t *testing.T) { testClusterMintRoundTrips(t, c) })
	t.Run("Check", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		ctx := context.Background()
		fp := []byte("fingerprint-0123456789abcdef0123")
		require.NoError(t, st.Check(ctx, fp, true))
		require.NoError(t, st.Check(ctx, fp, false))
		assert.ErrorIs(t, st.Check(ctx, []byte("another"), false), backend.ErrSecretMismatch)
	})
}

// Sessions spread over the slots of several nodes, and the steady read
// of one is one GET on the node that owns its key.
func testClusterSpreadAndOneGet(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	const n = 12
	var tokens []string
	slots, nodes := map[int]bool{}, map[string]int{}
	for i := range n {
		tok := ctok(fmt.Sprintf("spread-%d", i), "v")
		tokens = append(tokens, tok)
		require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Data: []byte("d"), Expires: exp, User: "p:spread"}))
		key := st.sessionKey(format.KeyOf(tok))
		slots[redisc.Slot(key)] = true
		nodes[c.Owner(key).Addr]++
	}
	t.Logf("%d sessions on %d slots and %d nodes", n, len(slots), len(nodes))
	assert.GreaterOrEqual(t, len(slots), 3)
	assert.GreaterOrEqual(t, len(nodes), 2)
	entries, err := backendtest.ListAll(ctx, st, "p:spread")
	require.NoError(t, err)
	assert.Len(t, entries, n)

	for _, node := range c.Nodes {
		_, err := node.Do("CONFIG", "RESETSTAT")
		require.NoError(t, err)
	}
	for _, tok := range tokens {
		_, found, err := st.Find(tok)
		require.NoError(t, err)
		require.True(t, found)
		got, err := st.Lookup(ctx, format.KeyOf(tok))
		require.NoError(t, err)
		require.True(t, got.Live())
	}
	for _, node := range c.Nodes {
		stats := commandStats(t, node)
		want := 2 * nodes[node.Addr]
		assert.Equal(t, want, stats["get"], "%s: one GET per read on the owner", node.Addr)
		delete(stats, "get")
		assert.Empty(t, stats, "%s: nothing else", node.Addr)
	}
}

// commandStats returns the calls per command since CONFIG RESETSTAT,
// without the commands of the test, of layout refreshes and of the
// replicas' acknowledgements (REPLCONF ACK, every second).
func commandStats(t *testing.T, node *storetest.Server) map[string]int {
	t.Helper()
	info, err := redis.String(node.Do("INFO", "commandstats"))
	require.NoError(t, err)
	out := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		switch name {
		case "info", "config|resetstat", "config|get", "cluster|slots", "cluster|info", "cluster|myid", "ping", "replconf":
			continue
		}
		calls, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		out[name] = calls
	}
	return out
}

// The protocol's steps, run one by one as if the process stopped between
// them: what Redis holds keeps every guarantee.
func testClusterCrashBetweenSteps(t *testing.T, c *storetest.Cluster) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	cred := format.Credential{7}
	mark := format.KeyOf(ctok("mark", "x"))
	session := func(st *clusterStore, tok, user string) backend.NewSession {
		return backend.NewSession{Token: tok, Nonce: []byte("nonce"), Record: crec, Credential: cred, Mark: mark, Expires: exp, User: user}
	}

	t.Run("mint stopped after step 1, its credential signed out, then its write fails", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		user := "p:crash1"
		b := session(st, ctok("b", "v"), user)
		require.NoError(t, st.Mint(ctx, b))
		a := session(st, ctok("a", "v"), user)
		_, err := st.mintIndex(ctx, a)
		require.NoError(t, err)
		require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(b.Token), User: user, Until: exp, Mark: mark}))
		got, _ := st.Lookup(ctx, format.KeyOf(a.Token))
		assert.True(t, got.Ended, "the sign-out marked the key of the mint in flight")
		assert.ErrorIs(t, st.mintWrite(ctx, a), backend.ErrConflict, "whose write then fails")
		got, _ = st.Lookup(ctx, format.KeyOf(b.Token))
		assert.True(t, got.Ended)
		v, err := redis.Bytes(c.Owner(st.markKey(user, mark)).Do("GET", st.markKey(user, mark)))
		require.NoError(t, err)
		assert.Equal(t, format.Ended, v, "the mark is in the user's slot")
		entries, err := backendtest.ListAll(ctx, st, user)
		require.NoError(t, err)
		assert.Empty(t, entries)
		n, _ := redis.Int(c.Owner(st.indexKey(user)).Do("ZCARD", st.indexKey(user)))
		assert.Zero(t, n, "and the index is empty")
	})

	t.Run("sign-out stopped after its mark: no mint of the credential, the session still live until it is retried", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		user := "p:crash2"
		b := session(st, ctok("b", "v"), user)
		require.NoError(t, st.Mint(ctx, b))
		_, err := st.eval(ctx, endIndexScript, []string{st.indexKey(user), st.credsKey(user), st.markKey(user, mark)},
			format.KeyOf(b.Token), time.Hour.Milliseconds(), mark)
		require.NoError(t, err)
		assert.ErrorIs(t, st.Mint(ctx, session(st, ctok("a", "v"), user)), backend.ErrSignedOut)
		got, _ := st.Lookup(ctx, format.KeyOf(ctok("a", "v")))
		assert.False(t, got.Found(), "nothing was written")
		got, _ = st.Lookup(ctx, format.KeyOf(b.Token))
		assert.True(t, got.Live(), "the session is live: the caller got an error, and signs out again")
		require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(b.Token), User: user, Until: exp, Mark: mark}))
		got, _ = st.Lookup(ctx, format.KeyOf(b.Token))
		assert.True(t, got.Ended)
	})

	t.Run("mint stopped after step 1: listed by nobody, pruned by nobody, expires by its score", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		user := "p:crash3"
		a := session(st, ctok("a", "v"), user)
		_, err := st.mintIndex(ctx, a)
		require.NoError(t, err)
		entries, err := backendtest.ListAll(ctx, st, user)
		require.NoError(t, err)
		assert.Empty(t, entries)
		score, err := redis.Int64(c.Owner(st.indexKey(user)).Do("ZSCORE", st.indexKey(user), format.KeyOf(a.Token)))
		require.NoError(t, err, "the entry stays: a mint may be between its steps")
		assert.Equal(t, exp.UnixMilli(), score)
		require.NoError(t, st.mintWrite(ctx, a))
		entries, _ = backendtest.ListAll(ctx, st, user)
		assert.Len(t, entries, 1, "its write, however late, is listed")
	})

	t.Run("two mints of one credential: the later step 1 fences the earlier's key", func(t *testing.T) {
		st := newClusterTestStore(t, c, Options{})
		user := "p:crash4"
		a, b := session(st, ctok("a", "v"), user), session(st, ctok("b", "v"), user)
		othersA, err := st.mintIndex(ctx, a)
		require.NoError(t, err)
		assert.Empty(t, othersA)
		othersB, err := st.mintIndex(ctx, b)
		require.NoError(t, err)
		assert.Equal(t, []string{format.KeyOf(a.Token)}, othersB[:1], "the later sees the earlier")
		require.NoError(t, st.mintWrite(ctx, b))
		require.NoError(t, st.mintFinish(ctx, b, othersB))
		raw, err := redis.Bytes(c.Owner(st.sessionKey(format.KeyOf(a.Token))).Do("GET", st.sessionKey(format.KeyOf(a.Token))))
		require.NoError(t, err)
		assert.Equal(t, fence, raw[:len(fence)], "the earlier's absent key is fenced")
		assert.ErrorIs(t, st.mintWrite(ctx, a), backend.ErrConflict, "so its write fails")
		entries, _ := backendtest.ListAll(ctx, st, user)
		assert.Equal(t, []string{format.KeyOf(b.Token)}, entryKeys(entries))

		got, _ := st.Lookup(ctx, format.KeyOf(a.Token))
		a.Replace = got
		require.NoError(t, st.Mint(ctx, a), "a mint that saw the fence replaces it")
		got, _ = st.Lookup(ctx, format.KeyOf(b.Token))
		assert.False(t, got.Found(), "and ends the other session of the credential")
		entries, _ = backendtest.ListAll(ctx, st, user)
		assert.Equal(t, []string{format.KeyOf(a.Token)}, entryKeys(entries))
	})
}

func entryKeys(entries []backend.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Key)
	}
	return out
}

// Many processes minting spellings of one credential at once leave
// exactly one live session, listed.
func testClusterConcurrentMints(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	user, cred, mark := "p:race", format.Credential{9}, format.KeyOf(ctok("race-mark", "x"))
	const n = 16
	var (
		wg       sync.WaitGroup
		minted   atomic.Int64
		conflict atomic.Int64
	)
	for i := range n {
		wg.Go(func() {
			err := st.Mint(ctx, backend.NewSession{Token: ctok(fmt.Sprintf("race-%d", i), "v"), Record: crec, Credential: cred, Mark: mark, Expires: exp, User: user})
			switch {
			case err == nil:
				minted.Add(1)
			case errors.Is(err, backend.ErrConflict):
				conflict.Add(1)
			default:
				t.Errorf("mint %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	live := 0
	for i := range n {
		got, err := st.Lookup(ctx, format.KeyOf(ctok(fmt.Sprintf("race-%d", i), "v")))
		require.NoError(t, err)
		if got.Live() {
			live++
		}
	}
	entries, err := backendtest.ListAll(ctx, st, user)
	require.NoError(t, err)
	t.Logf("%d concurrent mints of one credential: %d written, %d fenced (conflict), %d live", n, minted.Load(), conflict.Load(), live)
	assert.Equal(t, 1, live, "exactly one live session")
	assert.Len(t, entries, 1, "listed")
}

// tokensInSlot returns n session tokens whose keys (in st) fall in slot.
func tokensInSlot(st *clusterStore, slot, n int) []string {
	var out []string
	var sel format.Selector
	prefix := st.sessionKey("")
	for i := uint64(0); len(out) < n; i++ {
		binary.BigEndian.PutUint64(sel[8:], i)
		if redisc.Slot(prefix+sel.Key()) == slot {
			out = append(out, format.Token(sel, format.Validator{1}))
		}
	}
	return out
}

// userInSlot returns a user index whose keys (in st) fall in slot.
func userInSlot(st *clusterStore, slot int) string {
	for i := 0; ; i++ {
		u := "p:user" + strconv.Itoa(i)
		if redisc.Slot(st.indexKey(u)) == slot {
			return u
		}
	}
}

// serve runs workers that each mint, read, list and sign out sessions of
// tokens (one token per worker at a time) until stop is closed, and
// counts what went wrong: errors, and sessions not found live between
// their mint and their end.
type serveCounts struct {
	ops, errs, lost atomic.Int64
	firstErr        atomic.Value
	// wait waits for the workers, once stop is closed.
	wait func()
}

func serve(st *clusterStore, workers int, tokens func(w, i int) string, user func(w int) string, stop <-chan struct{}) *serveCounts {
	var counts serveCounts
	var wg sync.WaitGroup
	fail := func(err error) {
		counts.errs.Add(1)
		counts.firstErr.CompareAndSwap(nil, err.Error())
	}
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, u := tokens(w, i), user(w)
				key := format.KeyOf(tok)
				exp := time.Now().Add(time.Hour)
				seen, err := st.Lookup(ctx, key)
				if err != nil {
					fail(err)
					continue
				}
				if err := st.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte{byte(i)}, Record: crec, Data: []byte("d"), Expires: exp, User: u, Replace: seen}); err != nil {
					fail(err)
					continue
				}
				counts.ops.Add(1)
				for range 3 {
					got, err := st.Lookup(ctx, key)
					switch {
					case err != nil:
						fail(err)
					case !got.Live():
						counts.lost.Add(1)
					}
					if _, found, err := st.Find(tok); err != nil {
						fail(err)
					} else if !found {
						counts.lost.Add(1)
					}
					counts.ops.Add(2)
				}
				entries, err := backendtest.ListAll(ctx, st, u)
				if err != nil {
					fail(err)
				} else if !slicesContains(entryKeys(entries), key) {
					counts.lost.Add(1)
				}
				if err := st.End(ctx, backend.Ending{Key: key, User: u, Until: time.Now().Add(-time.Millisecond)}); err != nil {
					fail(err)
				}
				counts.ops.Add(2)
			}
		})
	}
	counts.wait = wg.Wait
	return &counts
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A slot moved to another primary while 16 workers mint, read, list and
// sign out sessions in it (its session keys and its user's index): MOVED
// and ASK are followed, nothing fails, nothing is lost.
func testClusterResharding(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	user := userInSlot(st, 0)
	slot := redisc.Slot(st.indexKey(user))
	const workers = 16
	tokens := tokensInSlot(st, slot, workers*2)
	var to *storetest.Server
	from := c.Owner(st.indexKey(user))
	for s := 0; s < 16384; s += 1000 {
		if p := c.Primary(s); p != nil && p != from {
			to = p
			break
		}
	}
	require.NotNil(t, to)
	stop := make(chan struct{})
	counts := serve(st, workers, func(w, i int) string { return tokens[w*2+i%2] }, func(int) string { return user }, stop)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	moved := c.MigrateSlot(slot, to, 20*time.Millisecond)
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	counts.wait()
	t.Logf("slot %d moved (%d keys, %v) under %d workers: %d operations (%d MOVED, %d ASK followed), %d errors (%v), %d lost",
		slot, moved, took.Round(time.Millisecond), workers, counts.ops.Load(), st.movedN.Load(), st.askedN.Load(),
		counts.errs.Load(), counts.firstErr.Load(), counts.lost.Load())
	assert.Positive(t, moved)
	assert.Positive(t, st.movedN.Load(), "MOVED was met")
	assert.Positive(t, st.askedN.Load(), "ASK was met")
	assert.Zero(t, counts.errs.Load(), "no error: %v", counts.firstErr.Load())
	assert.Zero(t, counts.lost.Load(), "nothing lost")
	assert.Same(t, to, c.Owner(st.indexKey(user)))
}

// The faults that break a cluster, in one of their own: a graceful
// failover while serving, then a primary killed, and one operation's
// deadline across its retries.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	c := storetest.StartCluster(t)
	st := newClusterTestStore(t, c, Options{})

	t.Run("GracefulFailover", func(t *testing.T) {
		const workers = 16
		stop := make(chan struct{})
		counts := serve(st, workers, func(w, i int) string { return ctok(fmt.Sprintf("fo-%d-%d", w, i%8), "v") },
			func(w int) string { return "p:fo" + strconv.Itoa(w) }, stop)
		time.Sleep(200 * time.Millisecond)
		replica := c.ReplicaOf(c.Nodes[0])
		took := c.Failover(replica)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		counts.wait()
		t.Logf("graceful CLUSTER FAILOVER (%v) under %d workers: %d operations, %d errors (%v), %d lost; %d writes run again on the new primary (demoted before a replica acknowledged them)",
			took.Round(time.Millisecond), workers, counts.ops.Load(), counts.errs.Load(), counts.firstErr.Load(), counts.lost.Load(), st.redone.Load())
		assert.Zero(t, counts.errs.Load(), "no error: %v", counts.firstErr.Load())
		assert.Zero(t, counts.lost.Load(), "nothing lost")
		c.WaitHealthy()
	})

	t.Run("PrimaryKilled", func(t *testing.T) {
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		victim := c.Owner(st.sessionKey(format.KeyOf(ctok("victim", "v"))))
		var onVictim, elsewhere []string
		for i := 0; len(onVictim) < 8 || len(elsewhere) < 8; i++ {
			tok := ctok(fmt.Sprintf("kill-%d", i), "v")
			key := st.sessionKey(format.KeyOf(tok))
			if c.Owner(key) == victim {
				if len(onVictim) < 8 {
					onVictim = append(onVictim, tok)
				}
			} else if len(elsewhere) < 8 {
				elsewhere = append(elsewhere, tok)
			}
		}
		for _, tok := range append(append([]string{}, onVictim...), elsewhere...) {
			require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Expires: exp, User: "p:kill"}))
		}
		// Let the replica catch up with the mints before the crash.
		_, err := victim.Do("WAIT", 1, 1000)
		require.NoError(t, err)

		replica := c.ReplicaOf(victim)
		killed := time.Now()
		c.Kill(victim)

		deadline := 300 * time.Millisecond
		dctx, cancel := context.WithTimeout(ctx, deadline)
		began := time.Now()
		_, err = st.Lookup(dctx, format.KeyOf(onVictim[0]))
		cancel()
		waited := time.Since(began)
		assert.ErrorIs(t, err, store.ErrUnavailable, "a slot without a primary fails")
		t.Logf("one Lookup on a dead primary's slot, with a %v deadline: %v after %v", deadline, err, waited.Round(time.Millisecond))

		var (
			victimErrs, otherErrs, wrong int
			recovered                    time.Duration
		)
		for recovered == 0 && time.Since(killed) < 30*time.Second {
			ok := true
			for _, tok := range onVictim {
				got, err := st.Lookup(ctx, format.KeyOf(tok))
				switch {
				case err != nil:
					assert.ErrorIs(t, err, store.ErrUnavailable)
					victimErrs++
					ok = false
				case !got.Live():
					wrong++
				}
			}
			for _, tok := range elsewhere {
				got, err := st.Lookup(ctx, format.KeyOf(tok))
				if err != nil {
					otherErrs++
				} else if !got.Live() {
					wrong++
				}
			}
			if ok {
				recovered = time.Since(killed)
			}
		}
		c.WaitPrimary(replica)
		t.Logf("primary killed: its slots served again after %v (%d failed reads there, each within its deadline); "+
			"other slots: %d errors; %d live sessions read as not live", recovered.Round(time.Millisecond), victimErrs, otherErrs, wrong)
		assert.NotZero(t, recovered, "the slots are served again after the promotion")
		assert.Zero(t, otherErrs, "the other slots keep serving")
		assert.Zero(t, wrong, "never a wrong not-found for a live session")
	})
	t.Run("SignOutAndPrimaryCrash", func(t *testing.T) { testClusterSignOutAndPrimaryCrash(t, c) })
}

// A cluster store pointed at a Redis that is not a cluster node fails at
// start with a sentence that names the problem; so does one at a cluster
// node that may evict.
//
// It returns the store with the error, as Open does for a single Redis:
// its operations fail at once with that reason, and so does its Check.
func TestClusterMisconfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fp := []byte("fingerprint-0123456789abcdef0123")
	plain := storetest.Start(t)
	st, err := newClusterStore([]string{plain.Addr}, nil, Options{})
	assert.ErrorIs(t, err, store.ErrMisconfigured)
	assert.ErrorContains(t, err, "not in cluster mode")
	assert.NotContains(t, err.Error(), plain.Addr, "no address in the error")
	require.NotNil(t, st, "the store comes with the reason")
	defer st.(io.Closer).Close()
	err = st.Check(ctx, fp, true)
	assert.ErrorIs(t, err, store.ErrMisconfigured, "its Check says why")
	assert.ErrorContains(t, err, "not in cluster mode")
	_, err = st.Lookup(ctx, format.KeyOf(ctok("k", "v")))
	assert.ErrorIs(t, err, store.ErrMisconfigured, "and so does every operation")

	st, err = newClusterStore([]string{"127.0.0.1:1"}, []redis.DialOption{redis.DialConnectTimeout(time.Second)}, Options{})
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.NotErrorIs(t, err, store.ErrMisconfigured)
	assert.NotContains(t, err.Error(), "127.0.0.1")
	require.NotNil(t, st)
	defer st.(io.Closer).Close()
	assert.ErrorIs(t, st.Check(ctx, fp, true), store.ErrUnavailable)
}

// A store opened while no seed answers works once one does: it reads the
// layout again when used, and its Check reports the problem until then.
func testClusterSeedsAnswerLater(t *testing.T, c *storetest.Cluster) {
	ctx := context.Background()
	fp := []byte("fingerprint-0123456789abcdef0123")
	seed := c.ReplicaOf(c.Nodes[0])
	seed.Stop()
	st, err := newClusterStore([]string{seed.Addr}, []redis.DialOption{redis.DialConnectTimeout(time.Second)}, Options{})
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorContains(t, err, "connection refused")
	require.NotNil(t, st)
	defer st.(io.Closer).Close()
	assert.ErrorIs(t, st.Check(ctx, fp, false), store.ErrUnavailable)
	tok := ctok("later", "v")
	assert.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Expires: time.Now().Add(time.Hour), User: "p:later"}), store.ErrUnavailable)

	seed.Restart()
	restarted := time.Now()
	require.Eventually(t, func() bool { return st.Check(ctx, fp, false) == nil }, 30*time.Second, 50*time.Millisecond, "the store works once its seed answers")
	t.Logf("seed restarted: the store's Check passed %v later", time.Since(restarted).Round(time.Millisecond))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Expires: time.Now().Add(time.Hour), User: "p:later"}))
	got, err := st.Lookup(ctx, format.KeyOf(tok))
	require.NoError(t, err)
	assert.True(t, got.Live())
	c.WaitHealthy()
}

// seenAt returns a record whose last seen time is seen.
func seenAt(seen time.Time) []byte {
	return format.EncodeRecord(&format.Session{Created: seen.Add(-time.Hour), LastSeen: seen, Expires: seen.Add(time.Hour),
		Identity: provider.Identity{UserID: "u", Provider: "p"}})
}

// Many mints of one user at once, each with a limit of 3: once they have
// returned, at most 3 sessions are live, and every other one was ended by
// exactly one mint, which reported it.
func testClusterLimitRace(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	user := "p:limitrace"
	const n, max = 24, 3
	base := time.Now().Add(-time.Hour)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		reported = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			limit := &backend.Limit{Max: max}
			tok := ctok(fmt.Sprintf("lr-%d", i), "v")
			err := st.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte{byte(i)}, Record: seenAt(base.Add(time.Duration(i) * time.Second)),
				Expires: exp, User: user, Limit: limit})
			if err != nil {
				t.Errorf("mint %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range limit.Ended {
				reported[e.Key]++
			}
		})
	}
	wg.Wait()
	live := 0
	for i := range n {
		key := format.KeyOf(ctok(fmt.Sprintf("lr-%d", i), "v"))
		got, err := st.Lookup(ctx, key)
		require.NoError(t, err)
		switch {
		case got.Live():
			live++
			assert.Zero(t, reported[key], "a live session is not reported ended")
		default:
			assert.True(t, got.Ended, "a session the limit ended keeps its mark")
			assert.Equal(t, 1, reported[key], "each ended session is reported by exactly one mint")
		}
	}
	entries, err := backendtest.ListAll(ctx, st, user)
	require.NoError(t, err)
	t.Logf("%d concurrent mints with a limit of %d: %d live after them (%d ended by a race beyond the limit's need), %d reported ended",
		n, max, live, max-live, len(reported))
	assert.LessOrEqual(t, live, max, "never more than the limit")
	assert.Positive(t, live)
	assert.Len(t, entries, live, "listed")
	assert.Equal(t, n, live+len(reported), "every session is live or was reported ended")
}

// The limit's steps, as if a mint stopped between them: a mint stopped
// after its write leaves one session more than the limit, which the next
// mint with a limit ends; a session ends for the limit only if it is
// still the one counted.
func testClusterLimitStopped(t *testing.T, c *storetest.Cluster) {
	st := newClusterTestStore(t, c, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	user := "p:limitstop"
	base := time.Now().Add(-time.Hour)
	session := func(name string, seen time.Duration) backend.NewSession {
		return backend.NewSession{Token: ctok(name, "v"), Nonce: []byte(name), Record: seenAt(base.Add(seen)), Expires: exp, User: user}
	}
	key := func(name string) string { return format.KeyOf(ctok(name, "v")) }
	for i, name := range []string{"a", "b"} {
		s := session(name, time.Duration(i)*time.Minute)
		s.Limit = &backend.Limit{Max: 2}
		require.NoError(t, st.Mint(ctx, s))
		require.Empty(t, s.Limit.Ended)
	}
	cs := session("c", 10*time.Minute)
	others, err := st.mintIndex(ctx, cs)
	require.NoError(t, err)
	require.NoError(t, st.mintWrite(ctx, cs))
	require.NoError(t, st.mintFinish(ctx, cs, others))
	entries, _ := backendtest.ListAll(ctx, st, user)
	assert.Len(t, entries, 3, "stopped before its count: one more than the limit, for now")

	d := session("d", 20*time.Minute)
	d.Limit = &backend.Limit{Max: 2}
	require.NoError(t, st.Mint(ctx, d))
	assert.Equal(t, []string{key("a"), key("b")}, entryKeys(d.Limit.Ended), "the next mint with a limit counts it")
	entries, _ = backendtest.ListAll(ctx, st, user)
	assert.ElementsMatch(t, []string{key("c"), key("d")}, entryKeys(entries))

	// The end script ends the session it was given only.
	end := func(name string, counted []byte) bool {
		reply, err := st.eval(ctx, limitEndScript, []string{st.sessionKey(key(name))}, counted[:format.CredAt])
		require.NoError(t, err)
		return reply != nil
	}
	raw := func(name string) []byte {
		v, err := st.get(ctx, st.sessionKey(key(name)))
		require.NoError(t, err)
		return v
	}
	counted := raw("c")
	require.NoError(t, st.Touch(ctx, ctok("c", "v"), seenAt(base.Add(30*time.Minute))))
	assert.True(t, end("c", counted), "touched since it was counted: still that session")
	got, _ := st.Lookup(ctx, key("c"))
	assert.True(t, got.Ended)
	ttl, err := redis.Int64(c.Owner(st.sessionKey(key("c"))).Do("PTTL", st.sessionKey(key("c"))))
	require.NoError(t, err)
	assert.Greater(t, ttl, (59 * time.Minute).Milliseconds(), "the mark stays as long as the session would have")

	counted = raw("d")
	require.NoError(t, st.End(ctx, backend.Ending{Key: key("d"), User: user, Until: exp}))
	assert.False(t, end("d", counted), "signed out meanwhile: not ended again, not reported")

	e := session("e", 0)
	require.NoError(t, st.Mint(ctx, e))
	counted = raw("e")
	again := session("e", 0)
	again.Nonce, again.Replace = []byte("other"), format.Parse(counted)
	require.NoError(t, st.End(ctx, backend.Ending{Key: key("e"), Until: exp, Replaced: true, Nonce: e.Nonce}))
	again.Replace = format.Stored{}
	require.NoError(t, st.Mint(ctx, again))
	assert.False(t, end("e", counted), "a session minted anew at the key is not the one counted")
	got, _ = st.Lookup(ctx, key("e"))
	assert.True(t, got.Live())
}

// List reads a user's sessions with one pipeline per node (a per-key read
// would write once per session), and falls back to the per-key path for
// the keys a stale layout sends to the wrong node.
func testClusterListPipelines(t *testing.T, c *storetest.Cluster) {
	var writes atomic.Int64
	st, err := startCluster(c.Addrs(), []redis.DialOption{
		redis.DialConnectTimeout(2 * time.Second), redis.DialReadTimeout(30 * time.Second), redis.DialWriteTimeout(30 * time.Second),
		redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, writes: &writes}, nil
		}),
	}, Options{})
	require.NoError(t, err)
	st.prefix = "t" + strconv.FormatInt(clusterStores.Add(1), 10) + ":"
	t.Cleanup(st.close)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	user := "p:pipelined"
	const n = 12
	nodes := map[string]bool{}
	var want []string
	for i := range n {
		tok := ctok(fmt.Sprintf("pipe-%d", i), "v")
		require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: crec, Expires: exp, User: user}))
		nodes[c.Owner(st.sessionKey(format.KeyOf(tok))).Addr] = true
		want = append(want, format.KeyOf(tok))
	}
	require.GreaterOrEqual(t, len(nodes), 2)
	_, err = backendtest.ListAll(ctx, st, user) // every node's pool has a connection now
	require.NoError(t, err)

	writes.Store(0)
	entries, err := backendtest.ListAll(ctx, st, user)
	require.NoError(t, err)
	assert.ElementsMatch(t, want, entryKeys(entries))
	t.Logf("List of %d sessions on %d nodes: %d writes to the network (one per session would be %d)", n, len(nodes), writes.Load(), n+1)
	assert.LessOrEqual(t, writes.Load(), int64(1+len(nodes)), "the index, then one pipeline per node")

	// A stale layout: every session's slot points to a wrong primary.
	primaries := st.primaries()
	for _, k := range want {
		slot := redisc.Slot(st.sessionKey(k))
		for _, p := range primaries {
			if p != st.primary(slot) {
				st.mu.Lock()
				st.slots[slot] = p
				st.mu.Unlock()
				break
			}
		}
	}
	moved := st.movedN.Load()
	entries, err = backendtest.ListAll(ctx, st, user)
	require.NoError(t, err)
	assert.ElementsMatch(t, want, entryKeys(entries), "MOVED in a pipeline: that key is read on its own")
	assert.Positive(t, st.movedN.Load()-moved)
}

// countingConn counts the writes to a connection (a pipeline flushes its
// commands in one).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}
