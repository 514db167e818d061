package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
)

// NearCache turns on, in Options.NearCache, a cache of sessions in the
// process's memory in front of Redis: a request whose session is cached
// costs no round trip. Its zero value is the default of every field.
// Single Redis and Sentinel only: Open refuses it on a Cluster (see
// below).
//
// What is cached is what Redis holds at sg:s:<key>, and only that: a
// live session (its record, its scs values, the hash of its token's
// validator, its nonce) or the mark of an ended one, as Lookup returns
// it. Never a session token, never a frontend token, never "nothing
// stored" (so that requests with made-up tokens cannot push real
// sessions out).
//
// How it stays fresh. The store keeps one more connection to Redis, the
// invalidation link, on which it asks Redis (CLIENT TRACKING ... BCAST
// PREFIX sg:s:, redirected to the link itself, subscribed to
// __redis__:invalidate) to tell it of every change to any session key,
// whoever makes it; each change removes the key from the cache (a flush
// empties it). Every Fence/4 (and right after each of its own writes)
// the store sends a PING on the link and notes when it sent it. Redis
// answers a PING after the changes it announced before it, on the same
// connection, in order; and the announcement of a write is queued on the
// link before the writer gets its reply. So when the answer to a PING
// sent at s arrives, every change whose writer had its reply by s has
// already been applied to the cache. A cached entry is served only while
// the last answered PING was sent less than Fence ago, hence:
//
//   - a value is never served after Fence has passed since a write that
//     changed it returned to its writer, on any instance (the bound);
//   - when the link drops, stalls (no answer for Fence), or is replaced,
//     nothing is served from the cache, which is emptied, and every read
//     goes to Redis until a PING sent after the link was (re)subscribed
//     is answered;
//   - a read whose answer may predate a change announced while it was
//     under way is not cached (each read notes a sequence that every
//     announcement, flush and reconnection moves on, and fills only if
//     it has not moved);
//   - a write of this store is not followed by a cached answer older
//     than it on the same instance: after each write, nothing is served
//     until a PING sent after its reply is answered (one round trip on
//     the link, asked for at once).
//
// Measured on loopback (README, "Near cache"): a sign-out is seen by
// other instances within a fraction of a millisecond (p50) and a few
// milliseconds at worst while the link is healthy; Fence is the bound
// when it is not.
//
// Strict mode makes every End (sign-out, sign-out of all or the others,
// revoke, a session replaced by another user's sign-in) answer only once
// Fence has passed since its write returned: when the middleware answers
// 204, the session is refused by every instance that shares the Redis
// and the Fence. Without it, the sign-out is everywhere within Fence of
// the 204. The sessions a sign-in ends by itself (the device's previous
// session it continues, another session of the same frontend
// credential) are not waited for: they are within the bound, not
// before it.
//
// Costs: memory (at most MaxBytes, about the size of the Redis values
// plus some 150 bytes per entry), one connection per store, a PING per
// Fence/4, and, on every instance, one message per change to any session
// (mint, keep-alive, scs values, sign-out): the traffic of BCAST grows
// with the writes of the whole deployment, not with this instance's
// reads. Worth it when requests far outnumber session writes (no scs
// values written per request, keep-alives spaced out).
//
// The link needs Redis 6 or later and, for an ACL user, the commands
// CLIENT ID, CLIENT TRACKING, SUBSCRIBE and PING and the channel
// __redis__:invalidate (Redis 7 gives a new ACL user no channel: add
// &__redis__:invalidate). While Redis refuses them, every read goes to
// Redis, and Open and Check (/healthz) report it with
// store.ErrMisconfigured.
//
// An entry whose key's Redis TTL has passed is served until Redis
// deletes the key (and announces it), which Redis does lazily: the
// middleware checks every session's own expiry and idle time on each
// request, so no expired session is served.
//
// On a Sentinel set, the link follows the primary the store uses: when a
// failover begins or the store's primary changes, nothing is served
// (the fence lapses), and the link is dialled again to the new primary,
// emptying the cache. On a Cluster, each primary would need its own link
// following slot migrations and failovers; Open refuses a NearCache
// there rather than serve what it could not bound.
type NearCache struct {
	// MaxEntries is the most sessions cached; the least recently used go
	// first (within each of 16 shards, which share the bound equally).
	// Zero or less: the default, 100,000; below 16: 16.
	MaxEntries int

	// MaxBytes bounds the cache's memory, in bytes, counted per entry as
	// the Redis value and key plus a fixed overhead for the structures
	// that hold them (about 150 bytes); the least recently used go first.
	// Each of the 16 shards holds a sixteenth, and a session larger than
	// its share is not cached. Zero or less: the default, 64 MiB.
	MaxBytes int64

	// Fence is the freshness bound: an entry is served only while the
	// link answered a PING sent less than Fence ago, so no instance
	// serves a session more than Fence after its sign-out returned. The
	// link is pinged every Fence/4. Zero or less: the default, 100 ms;
	// below 10 ms: 10 ms; above 1 s: 1 s (Strict waits it on every
	// sign-out).
	Fence time.Duration

	// Strict makes End return only once Fence has passed since its write
	// returned (it waits; see above). Default false: End returns as soon
	// as Redis did, and other instances may serve the ended session for
	// up to Fence after it.
	Strict bool
}

// The near cache's defaults and floors.
const (
	defaultNearEntries = 100_000
	defaultNearBytes   = 64 << 20
	defaultNearFence   = 100 * time.Millisecond
	minNearFence       = 10 * time.Millisecond
	maxNearFence       = time.Second
	// nearEntryOverhead is what an entry costs beyond its key and value:
	// the LRU's list element and map slot, the parsed Stored, the entry.
	nearEntryOverhead = 150
	// nearShards splits the cache so that concurrent requests rarely
	// wait on one lock; each shard holds a share of the bounds.
	nearShards = 16
	// nearPingsInFlight is the most PINGs awaiting an answer: a stalled
	// link is not sent more.
	nearPingsInFlight = 64
	// nearRedialMin and nearRedialMax bound the pause before the link is
	// dialled again.
	nearRedialMin = 10 * time.Millisecond
	nearRedialMax = time.Second
)

// withDefaults returns a copy of c with every unset field filled.
func (c NearCache) withDefaults() NearCache {
	if c.MaxEntries <= 0 {
		c.MaxEntries = defaultNearEntries
	}
	c.MaxEntries = max(c.MaxEntries, nearShards)
	if c.MaxBytes <= 0 {
		c.MaxBytes = defaultNearBytes
	}
	if c.Fence <= 0 {
		c.Fence = defaultNearFence
	}
	c.Fence = min(max(c.Fence, minNearFence), maxNearFence)
	return c
}

// errNearRefused is Check's (and Open's) report of a link Redis refuses.
var errNearRefused = misconfigured("Redis refuses the near cache's invalidation link, so every request reads Redis: " +
	"it needs Redis 6 or later and, for an ACL user, +client|id +client|tracking +subscribe +ping &__redis__:invalidate")

// problem returns errNearRefused while Redis refuses the link, once the
// first link was tried (waiting for that within ctx), and nil otherwise.
func (n *nearCache) problem(ctx context.Context) error {
	if n == nil {
		return nil
	}
	select {
	case <-n.tried:
	case <-ctx.Done():
		return nil
	}
	if n.refused.Load() {
		return errNearRefused
	}
	return nil
}

// errNearCluster is Open's refusal of a near cache on a Cluster.
var errNearCluster = errors.New("store: Options.NearCache is not supported on Redis Cluster " +
	"(each primary would need its own invalidation link that follows slot migrations): " +
	"use a single Redis or Sentinel, or turn the near cache off")

// nearCache is the near cache of a redisStore (see NearCache).
type nearCache struct {
	cfg     NearCache
	timeout time.Duration // a link with a PING unanswered this long is dialled again
	dial    func(context.Context) (redis.Conn, error)
	// current, when set (Sentinel: sentinelSet.primaryNow), reports
	// whether PINGs sent on the link's connection count (no failover
	// under way), and whether it still goes to the store's primary (else
	// it is dialled again).
	current atomic.Pointer[func(redis.Conn) (count, keep bool)]

	// base is the origin of the monotonic times below (ns since base).
	base time.Time
	// fresh is when the last answered PING of the current link was sent;
	// 0: none (link down, or not answered since it was subscribed).
	fresh atomic.Int64
	// barrier is when this store's last write returned: entries are
	// served only when fresh is not before it.
	barrier atomic.Int64
	// heard is when the link last heard from Redis (an answer to a PING,
	// or its subscription).
	heard atomic.Int64
	// gen moves on each time the cache is emptied: a read that noted
	// another gen does not fill.
	gen    atomic.Uint64
	seed   maphash.Seed
	shards [nearShards]nearShard

	// refused is set while Redis refuses the link's commands (an ACL
	// without CLIENT TRACKING, SUBSCRIBE or the channel; a Redis before
	// 6): every read then goes to Redis, and Check reports it. tried is
	// closed once the first link has been tried.
	refused   atomic.Bool
	tried     chan struct{}
	triedOnce sync.Once

	kick chan struct{} // asks the pinger for a PING now
	stop chan struct{}
	mu   sync.Mutex
	conn redis.Conn // the link's connection, nil when down
	done sync.WaitGroup

	// The counts tests and figures read.
	hits, misses, fills, invalidated, emptied, links atomic.Int64

	// afterGet, when set (tests), runs after a miss's GET answered and
	// before its fill.
	afterGet func(key string)
}

// nearShard is a part of the cache, with its own lock.
type nearShard struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, nearEntry]
	bytes    int64
	maxBytes int64
	// seq moves on each time a key of this shard is announced changed.
	seq uint64
}

// nearEntry is a cached value: what Lookup returned for the key.
type nearEntry struct {
	stored format.Stored
	size   int64
}

// newNearCache returns a near cache with cfg, whose link dials with dial,
// and starts its link. close stops it.
func newNearCache(cfg NearCache, timeout time.Duration, dial func(context.Context) (redis.Conn, error), follow func(redis.Conn) (count, keep bool)) *nearCache {
	n := &nearCache{
		cfg:     cfg.withDefaults(),
		timeout: timeout,
		dial:    dial,
		base:    time.Now(),
		seed:    maphash.MakeSeed(),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		tried:   make(chan struct{}),
	}
	entries := max(n.cfg.MaxEntries/nearShards, 1)
	for i := range n.shards {
		sh := &n.shards[i]
		sh.maxBytes = max(n.cfg.MaxBytes/nearShards, 1)
		sh.lru, _ = simplelru.NewLRU(entries, func(_ string, e nearEntry) { sh.bytes -= e.size })
	}
	if follow != nil {
		n.current.Store(&follow)
	}
	n.done.Add(1)
	go n.link()
	return n
}

// now is the time in ns since n.base, monotonic, never 0.
func (n *nearCache) now() int64 { return int64(time.Since(n.base)) + 1 }

// serving reports whether cached entries may be served at now.
func (n *nearCache) serving(now int64) bool {
	f := n.fresh.Load()
	return f != 0 && now-f < int64(n.cfg.Fence) && f >= n.barrier.Load()
}

// lookup is Lookup through the cache: the cached entry while the fence
// holds, else get's answer, cached if no change was announced meanwhile.
func (n *nearCache) lookup(ctx context.Context, key string, get func(context.Context, string) (format.Stored, error)) (format.Stored, error) {
	sh := &n.shards[maphash.String(n.seed, key)%nearShards]
	if n.serving(n.now()) {
		sh.mu.Lock()
		e, ok := sh.lru.Get(key)
		sh.mu.Unlock()
		if ok {
			n.hits.Add(1)
			return e.stored, nil
		}
	}
	n.misses.Add(1)
	gen := n.gen.Load()
	sh.mu.Lock()
	seq := sh.seq
	sh.mu.Unlock()
	st, err := get(ctx, key)
	if err != nil || !st.Live() && !st.Ended || !n.serving(n.now()) {
		return st, err // nothing stored, garbage, or a link not known alive
	}
	if n.afterGet != nil {
		n.afterGet(key)
	}
	size := int64(len(key)+len(st.Raw())) + nearEntryOverhead
	sh.mu.Lock()
	if sh.seq == seq && n.gen.Load() == gen && size <= sh.maxBytes {
		if old, ok := sh.lru.Peek(key); ok {
			sh.bytes -= old.size
		}
		sh.lru.Add(key, nearEntry{stored: st, size: size})
		sh.bytes += size
		for sh.bytes > sh.maxBytes {
			sh.lru.RemoveOldest()
		}
		n.fills.Add(1)
	}
	sh.mu.Unlock()
	return st, nil
}

// invalidate drops key, announced changed, and stops the fills of reads
// under way in its shard.
func (n *nearCache) invalidate(key string) {
	sh := &n.shards[maphash.String(n.seed, key)%nearShards]
	sh.mu.Lock()
	sh.seq++
	sh.lru.Remove(key)
	sh.mu.Unlock()
	n.invalidated.Add(1)
}

// empty drops every entry and stops the fills of reads under way.
func (n *nearCache) empty() {
	n.gen.Add(1)
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.bytes = 0
		sh.mu.Unlock()
	}
	n.emptied.Add(1)
}

// len returns the number of entries and their bytes.
func (n *nearCache) len() (entries int, bytes int64) {
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		entries += sh.lru.Len()
		bytes += sh.bytes
		sh.mu.Unlock()
	}
	return entries, bytes
}

// wrote notes that a write of this store returned: nothing is served
// until a PING sent after now is answered, which it asks for at once. A
// nil n does nothing.
func (n *nearCache) wrote() {
	if n == nil {
		return
	}
	now := n.now()
	for {
		b := n.barrier.Load()
		if b >= now || n.barrier.CompareAndSwap(b, now) {
			break
		}
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// settle is End's last step: in strict mode, it waits until Fence has
// passed since the write returned (err is its outcome), so that no
// instance with the same Fence serves the ended sessions any more. A
// context that ends first fails the End, which the caller may repeat. A
// nil n, or a failed write, returns err at once.
func (n *nearCache) settle(ctx context.Context, err error) error {
	if n == nil || !n.cfg.Strict || err != nil {
		return err
	}
	t := time.NewTimer(n.cfg.Fence)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return unavailable(fmt.Errorf("the sign-out is written, but the near cache's strict wait was cut short: %w", ctx.Err()))
	}
}

// close stops the link and waits for its goroutines. A nil n does
// nothing.
func (n *nearCache) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	select {
	case <-n.stop:
		n.mu.Unlock()
		return
	default:
	}
	close(n.stop)
	if n.conn != nil {
		n.conn.Close()
	}
	n.mu.Unlock()
	n.done.Wait()
}

// link keeps the invalidation link up until close: dial, subscribe,
// listen; after a failure, empty the cache, pause and dial again.
func (n *nearCache) link() {
	defer n.done.Done()
	pause := nearRedialMin
	for {
		healthy := n.listen()
		if healthy {
			pause = nearRedialMin
		}
		select {
		case <-n.stop:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, nearRedialMax)
	}
}

// listen runs one connection of the link: it subscribes, then applies
// what Redis announces and answers until the connection fails. It
// reports whether the link was subscribed.
func (n *nearCache) listen() bool {
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	conn, err := n.dial(ctx)
	cancel()
	if err != nil {
		n.triedOnce.Do(func() { close(n.tried) })
		return false
	}
	n.mu.Lock()
	select {
	case <-n.stop:
		n.mu.Unlock()
		conn.Close()
		return false
	default:
	}
	n.conn = conn
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.conn = nil
		n.mu.Unlock()
		conn.Close()
	}()
	err = subscribe(conn, n.timeout)
	var refused redis.Error
	n.refused.Store(errors.As(err, &refused))
	n.triedOnce.Do(func() { close(n.tried) })
	if err != nil {
		return false
	}
	// Whatever was cached, or is being read, may have missed changes
	// announced before this subscription: none of it is served.
	n.empty()
	n.links.Add(1)
	n.heard.Store(n.now())

	pings := make(chan int64, nearPingsInFlight)
	quit := make(chan struct{})
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		n.ping(conn, pings, quit)
	}()
	defer func() {
		n.fresh.Store(0)
		n.empty()
		close(quit)
		conn.Close()
		pinger.Wait()
	}()
	for {
		reply, err := conn.Receive()
		var refused redis.Error
		if errors.As(err, &refused) {
			// Redis refuses what the link sends (its PINGs: an ACL
			// changed since it subscribed): not a healthy link.
			n.refused.Store(true)
			return false
		}
		if err != nil {
			return true
		}
		msg, ok := reply.([]any)
		if !ok || len(msg) < 2 {
			return true // not what a subscribed connection receives
		}
		kind, _ := redis.String(msg[0], nil)
		switch {
		case kind == "pong":
			n.heard.Store(n.now())
			select {
			case sent := <-pings:
				if sent > n.fresh.Load() {
					n.fresh.Store(sent)
				}
			default:
				return true // an answer to no PING of ours
			}
		case kind == "message" && len(msg) == 3:
			if msg[2] == nil {
				n.empty() // a flush, or Redis dropping what it tracks
				continue
			}
			keys, err := redis.Strings(msg[2], nil)
			if err != nil {
				return true
			}
			for _, k := range keys {
				if len(k) > len(sessionPrefix) && k[:len(sessionPrefix)] == sessionPrefix {
					n.invalidate(k[len(sessionPrefix):])
				}
			}
		}
	}
}

// ping sends a PING on conn at once, then every Fence/4 (every second at
// most), and when kicked, noting in
// pings when each was sent, until quit. It empties the cache when the
// fence lapses (nothing is served then anyway), sends no PING while conn
// may not count (Sentinel: a failover under way), and closes conn, for
// the link to be dialled again, when a PING goes unanswered for the
// store's Timeout or conn no longer goes to the store's primary.
func (n *nearCache) ping(conn redis.Conn, pings chan int64, quit chan struct{}) {
	tick := time.NewTicker(min(n.cfg.Fence/4, time.Second))
	defer tick.Stop()
	var lapsed int64 // the fresh value whose lapse emptied the cache
	for first := true; ; first = false {
		if !first {
			select {
			case <-quit:
				return
			case <-n.stop:
				return
			case <-tick.C:
			case <-n.kick:
			}
		}
		now := n.now()
		if f := n.fresh.Load(); now-f >= int64(n.cfg.Fence) && f != lapsed {
			lapsed = f
			n.empty()
		}
		if len(pings) > 0 && now-n.heard.Load() > int64(n.timeout) {
			conn.Close() // stalled
			return
		}
		if cur := n.current.Load(); cur != nil {
			count, keep := (*cur)(conn)
			if !keep {
				conn.Close()
				return
			}
			if !count {
				continue
			}
		}
		select {
		case pings <- now:
		default:
			continue // stalled: do not pile PINGs up
		}
		if conn.Send("PING") != nil || conn.Flush() != nil {
			conn.Close()
			return
		}
	}
}

// subscribe makes conn the invalidation link: Redis announces on it, as
// messages of __redis__:invalidate, every change to a key under
// sessionPrefix (BCAST: whoever reads or writes it), and it subscribes.
func subscribe(conn redis.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	id, err := redis.Int64(redis.DoContext(conn, ctx, "CLIENT", "ID"))
	if err != nil {
		return err
	}
	if _, err := redis.DoContext(conn, ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", sessionPrefix); err != nil {
		return err
	}
	if _, err := redis.DoContext(conn, ctx, "PING"); err != nil { // the link's fence is its PINGs
		return err
	}
	if err := conn.Send("SUBSCRIBE", "__redis__:invalidate"); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return err
	}
	reply, err := redis.Values(redis.ReceiveContext(conn, ctx))
	if err != nil {
		return err
	}
	if kind, _ := redis.String(reply[0], nil); len(reply) != 3 || kind != "subscribe" {
		return errors.New("store: unexpected answer to SUBSCRIBE")
	}
	return nil
}

// primaryNow is the near cache's link check on Sentinel: keep reports
// whether conn, dialled by s, goes to the primary s uses; count, whether
// in addition no failover is known to be under way. A PING counts only
// when sent while count holds: a write on a new primary returns only
// after s learnt of it (the store's writes wait for the failover to end
// and confirm the primary they ran on), and the sentinels announce a
// failover (+try-failover) long before its end (+switch-master), so
// another instance's write on the new primary follows this store's
// learning of the failover by far more than the fence, unless a
// sentinel's announcements reach it that much later.
func (s *sentinelSet) primaryNow(conn redis.Conn) (count, keep bool) {
	pc, ok := conn.(*primaryConn)
	if !ok || pc.gen != s.gen.Load() {
		return false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failing) == 0, true
}

// nearStore is the store New returns with a near cache: a redisStore
// that can be closed.
type nearStore struct {
	*redisStore
}

// Close stops the near cache's link (its goroutines and its connection);
// the pool is the caller's and stays open. Lookups after Close go to
// Redis. It returns nil.
func (s *nearStore) Close() error {
	s.near.close()
	return nil
}

// storeOf returns the redisStore New returned as s.
func storeOf(s store.Store) *redisStore {
	if n, ok := s.(*nearStore); ok {
		return n.redisStore
	}
	return s.(*redisStore)
}
