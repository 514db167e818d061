package redisstore

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// nearStoreOn returns a store with a near cache of cfg on srv, on a pool
// of its own (an app instance of its own), closed when t ends.
func nearStoreOn(t testing.TB, srv *storetest.Server, opts Options, cfg NearCache) *redisStore {
	t.Helper()
	pool, err := NewPool(srv.URL)
	require.NoError(t, err)
	opts.NearCache = &cfg
	st := New(pool, opts)
	t.Cleanup(func() {
		st.(io.Closer).Close()
		pool.Close()
	})
	return storeOf(st)
}

// until waits for cond, checked every millisecond; it fails t when cond
// does not hold within a minute (a broken test, never a slow machine's
// figure).
func until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 60_000 {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// serving waits until n serves from its cache.
func serving(t testing.TB, n *nearCache) {
	t.Helper()
	until(t, "the near cache serves", func() bool { return n.serving(n.now()) })
}

// nearMint mints a live session for user under a token made of sel, on st,
// and returns its key.
func nearMint(t testing.TB, st *redisStore, sel, user string) string {
	t.Helper()
	tok := backendtest.Token(sel, "validator")
	require.NoError(t, st.Mint(context.Background(), backend.NewSession{Token: tok, Record: backendtest.Record,
		Data: []byte("data"), Expires: time.Now().Add(time.Hour), User: user}))
	return format.KeyOf(tok)
}

// nearEnd signs out key's session on st.
func nearEnd(t testing.TB, st *redisStore, key, user string) {
	t.Helper()
	require.NoError(t, st.End(context.Background(), backend.Ending{Key: key, User: user, Until: time.Now().Add(time.Hour)}))
}

// cached looks key up on st until st serves it from its cache (a fence
// may lapse on a busy machine) and returns it.
func cached(t testing.TB, st *redisStore, key string) format.Stored {
	t.Helper()
	var s format.Stored
	until(t, "served from the cache", func() bool {
		hits := st.near.hits.Load()
		s = lookup(t, st, key)
		return st.near.hits.Load() > hits
	})
	return s
}

// lookup is st.Lookup, which must answer.
func lookup(t testing.TB, st *redisStore, key string) format.Stored {
	t.Helper()
	s, err := st.Lookup(context.Background(), key)
	require.NoError(t, err)
	return s
}

// The contract holds with the cache on: among others, a store reads its
// own writes at once (End, then Lookup on the same store).
func TestNearCacheContract(t *testing.T) {
	t.Parallel()
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "lax", true: "strict"}[strict], func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, func(t *testing.T) backend.Backend {
				st := nearStoreOn(t, storetest.Start(t), Options{}, NearCache{Strict: strict, Fence: 20 * time.Millisecond})
				serving(t, st.near)
				return st
			})
		})
	}
}

// A session read once is then served from memory: no GET reaches Redis.
func TestNearCacheServesFromMemory(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	// A fence of a minute: no lapse on a busy machine spoils the count.
	a := nearStoreOn(t, srv, Options{}, NearCache{Fence: time.Minute})
	key := nearMint(t, a, "served", "p:ann")
	// B tracks from after the mint: no announcement of it can reach B's
	// link after B cached the session, and evict it mid-count.
	b := nearStoreOn(t, srv, Options{}, NearCache{Fence: time.Minute})
	serving(t, b.near)
	require.True(t, lookup(t, b, key).Live())
	gets := getCalls(t, srv)
	for range 100 {
		s := lookup(t, b, key)
		require.True(t, s.Live())
		assert.Equal(t, "data", string(s.Data))
	}
	assert.Equal(t, gets, getCalls(t, srv), "no GET while cached")
	assert.GreaterOrEqual(t, b.near.hits.Load(), int64(100))

	// Nothing stored is not cached: made-up keys cannot push sessions out.
	for range 3 {
		assert.False(t, lookup(t, b, "no-such-key-at-all-xx").Found())
	}
	assert.Equal(t, gets+3, getCalls(t, srv))
}

// getCalls returns how many GETs srv has run.
func getCalls(t testing.TB, srv *storetest.Server) int {
	t.Helper()
	info, err := redis.String(srv.Do("INFO", "commandstats"))
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
			n := 0
			for _, c := range rest {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

// (a) Strict mode: once End returned on instance A, instance B never
// serves the session live, though it had it cached: counted over many
// sign-outs.
func TestNearCacheStrictSignOutIsEverywhere(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	cfg := NearCache{Strict: true, Fence: 30 * time.Millisecond}
	a := nearStoreOn(t, srv, Options{}, cfg)
	b := nearStoreOn(t, srv, Options{}, cfg)
	const rounds = 60
	served, cachedBefore := 0, 0
	for i := range rounds {
		key := nearMint(t, a, "strict-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "p:bo")
		serving(t, b.near)
		require.True(t, lookup(t, b, key).Live())
		hits := b.near.hits.Load()
		require.True(t, lookup(t, b, key).Live())
		if b.near.hits.Load() > hits {
			cachedBefore++
		}
		nearEnd(t, a, key, "p:bo")
		if s := lookup(t, b, key); !s.Ended {
			served++
		}
	}
	assert.Zero(t, served, "B served a session A had signed out")
	assert.Positive(t, cachedBefore, "B had the sessions cached (else the test proves nothing)")
	t.Logf("%d sign-outs, B had %d of them cached: served after End returned: %d", rounds, cachedBefore, served)
}

// proxy is a TCP proxy to a Redis that can be frozen: bytes are held,
// in both directions, until it thaws; connections stay open.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	t.Cleanup(func() { p.thaw(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
	return p
}

func (p *proxy) pipe(from, to net.Conn) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		for p.frozen {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *proxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }
func (p *proxy) thaw()   { p.mu.Lock(); p.frozen = false; p.cond.Broadcast(); p.mu.Unlock() }

// linkThrough gives st a near cache of cfg whose link (alone) goes
// through a proxy to srv, and returns the proxy.
func linkThrough(t testing.TB, st *redisStore, srv *storetest.Server, cfg NearCache) *proxy {
	t.Helper()
	p := startProxy(t, srv.Addr)
	st.near.close()
	st.near = newNearCache(cfg, st.opts.Timeout, func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", p.ln.Addr().String())
	}, nil)
	t.Cleanup(st.near.close)
	return p
}

// (b) A stalled link: once its fence passes, B stops serving its cache
// and reads Redis, so a strict sign-out on A is seen by B; when the link
// answers again, B serves from its cache again.
func TestNearCacheStalledLink(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	cfg := NearCache{Strict: true, Fence: 50 * time.Millisecond}
	a := nearStoreOn(t, srv, Options{}, cfg)
	b := nearStoreOn(t, srv, Options{Timeout: 500 * time.Millisecond}, cfg)
	p := linkThrough(t, b, srv, cfg)
	key := nearMint(t, a, "stalled", "p:cy")
	serving(t, b.near)
	cached(t, b, key)

	emptied := b.near.emptied.Load()
	p.freeze()
	until(t, "B's fence lapses", func() bool { return !b.near.serving(b.near.now()) && b.near.emptied.Load() > emptied })
	entries, _ := b.near.len()
	assert.Zero(t, entries, "emptied when the fence lapsed")
	misses := b.near.misses.Load()
	assert.True(t, lookup(t, b, key).Live())
	assert.Equal(t, misses+1, b.near.misses.Load(), "read from Redis")
	entries, _ = b.near.len()
	assert.Zero(t, entries, "not filled while the fence has lapsed")

	nearEnd(t, a, key, "p:cy")
	assert.True(t, lookup(t, b, key).Ended, "the sign-out is seen through the stalled link's fence")

	p.thaw()
	serving(t, b.near)
	assert.True(t, lookup(t, b, key).Ended)
	assert.True(t, cached(t, b, key).Ended, "served from the cache again")
}

// (c) A killed link: the cache is emptied, reads go to Redis, and the
// link comes back by itself.
func TestNearCacheLinkKilled(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	b := nearStoreOn(t, srv, Options{}, NearCache{})
	key := nearMint(t, b, "killed", "p:di")
	serving(t, b.near)
	require.True(t, lookup(t, b, key).Live())
	require.Equal(t, int64(1), b.near.links.Load())
	emptied := b.near.emptied.Load()

	_, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
	require.NoError(t, err)
	until(t, "the link is back", func() bool { return b.near.links.Load() == 2 })
	assert.Greater(t, b.near.emptied.Load(), emptied)
	misses := b.near.misses.Load()
	assert.True(t, lookup(t, b, key).Live())
	assert.Equal(t, misses+1, b.near.misses.Load(), "the entry cached before the kill is gone")

	assert.True(t, cached(t, b, key).Live(), "cached again")
}

// (d) A read whose answer predates a change announced while it was under
// way is not cached: B's GET answers the live session, then (the hook)
// A signs it out and B's link applies the announcement, then B would
// fill. It does not: B's next lookup finds the sign-out.
func TestNearCacheReadRacingAnInvalidation(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	a := nearStoreOn(t, srv, Options{}, NearCache{})
	b := nearStoreOn(t, srv, Options{}, NearCache{})
	key := nearMint(t, a, "racing", "p:ed")
	serving(t, b.near)
	raced := false
	b.near.afterGet = func(k string) {
		if k != key || raced {
			return
		}
		raced = true
		seen := b.near.invalidated.Load()
		nearEnd(t, a, key, "p:ed")
		until(t, "B's link applied the sign-out", func() bool { return b.near.invalidated.Load() > seen })
	}
	fills := b.near.fills.Load()
	assert.True(t, lookup(t, b, key).Live(), "the GET answered before the sign-out")
	require.True(t, raced)
	assert.Equal(t, fills, b.near.fills.Load(), "not cached")
	serving(t, b.near)
	assert.True(t, lookup(t, b, key).Ended)
}

// (e) The cache holds at most MaxEntries entries and MaxBytes bytes, and
// no token.
func TestNearCacheBounds(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	for c, cfg := range []NearCache{{MaxEntries: 32, Fence: time.Minute}, {MaxBytes: 8 << 10, Fence: time.Minute}} {
		b := nearStoreOn(t, srv, Options{}, cfg)
		serving(t, b.near)
		var keys []string
		for i := range 300 {
			keys = append(keys, nearMint(t, b, "bound"+string(rune('0'+c))+strings.Repeat("x", i%7)+string(rune('A'+i%50))+string(rune('A'+i/50)), "p:fu"))
		}
		serving(t, b.near)
		for _, k := range keys {
			require.True(t, lookup(t, b, k).Live())
		}
		entries, bytes := b.near.len()
		t.Logf("%+v: %d entries, %d bytes", cfg, entries, bytes)
		assert.Positive(t, entries)
		if cfg.MaxEntries > 0 {
			assert.LessOrEqual(t, entries, cfg.MaxEntries)
		} else {
			assert.LessOrEqual(t, bytes, cfg.MaxBytes)
		}
		for i := range b.near.shards {
			sh := &b.near.shards[i]
			sh.mu.Lock()
			for _, e := range sh.lru.Values() {
				assert.NotContains(t, string(e.stored.Raw()), "validator", "no token in the cache")
			}
			sh.mu.Unlock()
		}
	}
}

// (f) Close stops the link: no goroutine of the near cache is left, for
// New's store and Open's; a closed store still answers, from Redis. Not
// parallel: it runs while no other test has a near cache.
func TestNearCacheCloseLeavesNoGoroutine(t *testing.T) {
	srv := storetest.Start(t)
	pool, err := NewPool(srv.URL)
	require.NoError(t, err)
	defer pool.Close()
	for _, open := range []func() (store.Store, *redisStore){
		func() (store.Store, *redisStore) {
			st := New(pool, Options{NearCache: &NearCache{}})
			return st, storeOf(st)
		},
		func() (store.Store, *redisStore) {
			st, err := Open(srv.URL, Options{NearCache: &NearCache{}})
			require.NoError(t, err)
			return st, st.(*openStore).redisStore
		},
	} {
		st, r := open()
		serving(t, r.near)
		require.NoError(t, st.(io.Closer).Close())
		// Close waited for the goroutines, which may still be returning.
		until(t, "no goroutine of a closed near cache", func() bool {
			buf := make([]byte, 1<<20)
			return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*nearCache)")
		})
		assert.False(t, r.near.serving(r.near.now()))
	}
	s, err := New(pool, Options{}).Lookup(context.Background(), "anything-at-all-xxxxx")
	require.NoError(t, err)
	assert.False(t, s.Found())
}

// Open refuses a near cache on a Cluster, before connecting.
func TestNearCacheRefusedOnCluster(t *testing.T) {
	t.Parallel()
	st, err := Open("redis://127.0.0.1:1?cluster=true", Options{NearCache: &NearCache{}})
	assert.Nil(t, st)
	assert.ErrorIs(t, err, errNearCluster)
	assert.Contains(t, err.Error(), "Cluster")
}

// On Sentinel, the link follows the primary: after a failover, B's link
// is on the new primary (its cache emptied on the way), and a strict
// sign-out on A there is refused by B, then served from B's cache.
func TestNearCacheFollowsSentinelFailover(t *testing.T) {
	t.Parallel()
	set := storetest.StartSentinel(t, storetest.SentinelConfig{})
	openNear := func() *redisStore {
		st, err := Open(set.URL(), Options{Timeout: 10 * time.Second, NearCache: &NearCache{Strict: true}})
		require.NoError(t, err)
		t.Cleanup(func() { st.(io.Closer).Close() })
		return st.(*openStore).redisStore
	}
	a, b := openNear(), openNear()
	key := nearMint(t, a, "failover", "p:jo")
	assert.True(t, cached(t, b, key).Live())
	links := b.near.links.Load()

	old := set.Failover()
	primary := set.WaitForNewPrimary(old)
	until(t, "B's link is dialled again", func() bool { return b.near.links.Load() > links })
	until(t, "both links on the new primary", func() bool {
		// Our links track with BCAST (flags t, B); the sentinels' own
		// subscriptions do not.
		clients, err := redis.String(set.Node(primary).Do("CLIENT", "LIST", "TYPE", "pubsub"))
		return err == nil && strings.Count(clients, "tB ") >= 2
	})
	nearEnd(t, a, key, "p:jo")
	assert.True(t, lookup(t, b, key).Ended, "the sign-out on the new primary is seen")
	assert.True(t, cached(t, b, key).Ended, "and cached from the new primary's link")
}
