package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
)

// clusterStore is the store on a Redis Cluster. A cluster runs a script
// on the keys of one slot only, so what the single store writes in one
// script is a protocol of per-slot steps here, ordered so that a crash
// between any two of them keeps the guarantees (see Mint and End).
//
// Keys (prefix "sg:"; U is the user's index, format.UserIndex):
//
//	sg:s:<key>          a session or the mark of an ended one: as on a single Redis, in the slot of the whole key,
//	                    so that a request reads it from the token alone with one GET on the node that owns it
//	sg:u:{U}            sorted set of the user's session keys scored by expiry (ms)
//	sg:c:{U}            hash: session key -> its credential id (8 bytes) and its credential's mark key,
//	                    for the sessions minted with a credential
//	sg:m:{U}:<mark>     a signed-out credential's mark, in the user's slot (the hash tag {U})
//	sg:k:{U}            hash: session key -> its nonce and the key it continues, for a continuing
//	                    mint between its steps 1 and 4 (see Mint)
//	sg:s:<mark>         the same mark where the single store keeps it, which Lookup reads
//	sg:fingerprint      as on a single Redis; sg:health{sg:fingerprint} is the check's write, in its slot
//
// The writes the guarantees rest on wait for a replica's acknowledgement
// before the operation answers (see acknowledged).
//
// Every command goes to the primary that owns its key's slot (never a
// replica: a signed-out session would stay live there for the replication
// lag), found from the layout redisc reads (CLUSTER SLOTS); MOVED updates
// the layout, ASK is followed once with ASKING, and TRYAGAIN, CLUSTERDOWN,
// LOADING and connection failures are retried after a short pause while a
// refresh of the layout runs, all within the operation's one deadline.
//
// redisc's own connections (Conn, RetryConn) take no context, and each of
// their redirections and dials would wait on its own timeout: the store
// runs its commands on pools of its own, one per node, with the
// operation's context, and uses redisc for the layout and the slots.
type clusterStore struct {
	backend.ServerClock // Redis judges expiry by its own clock
	cluster             *redisc.Cluster
	opts                Options
	dial                []redis.DialOption
	prefix              string // "sg:"; tests give each store its own

	mu    sync.RWMutex
	slots [redisc.HashSlots]string // primary address per slot, "" unknown
	pools map[string]*nodePool
	// closed is set by close: no pool is made, no layout read, no
	// operation run any more.
	closed atomic.Bool
	// replicated holds the primaries seen with a replica, in the layout
	// or in their own INFO (noteReplicas): their writes wait for one's
	// acknowledgement (see acknowledged). Never cleared: a replica that
	// fails leaves the layout, and the writes it no longer acknowledges
	// must not stand.
	replicated map[string]bool

	refreshing atomic.Bool
	// laidOut is set once a seed has answered with the layout;
	// noLayout, until then, is why none has (see whyNoLayout), nil when
	// not known yet.
	laidOut   atomic.Bool
	noLayout  atomic.Pointer[error]
	droppedAt atomic.Int64
	// movedN and askedN count the redirections followed, unacked the
	// writes no replica acknowledged, redone those written again after a
	// demotion (for tests).
	movedN, askedN, unacked, redone atomic.Int64
	vettedAt                        atomic.Int64
}

// Cluster's retry policy: redirections followed per command, and the
// pauses before a retry after TRYAGAIN, CLUSTERDOWN or a connection
// failure (doubling from the first to the last).
const (
	maxRedirects    = 8
	firstRetryPause = 10 * time.Millisecond
	lastRetryPause  = 100 * time.Millisecond
	// minRefreshGap spaces the layout refreshes that failures ask for.
	minRefreshGap = 100 * time.Millisecond
	// ackTimeout is how long, at most, a write the guarantees rest on
	// waits for a replica's acknowledgement (WAIT 1), within the
	// operation's deadline: a healthy replica acknowledges within a round
	// trip or two; one that has not within a second is cut off or
	// stalled. (100 ms made writes fail on a busy machine whose replica
	// was merely slow.)
	ackTimeout = time.Second
)

// errNotReplicated is the error of a write no replica acknowledged within
// ackTimeout: it is on its primary, but a failover now could lose it, so
// it is not reported done; the caller retries (every such step is safe
// to repeat).
var errNotReplicated = &redisError{msg: "store: unavailable: redis: no replica acknowledged the write in time " +
	"(a replica down, stalled or cut off): it could be lost in a failover", kind: []error{backend.ErrUnavailable}}

// newClusterStore returns a store on the Redis Cluster whose nodes addrs
// (host:port) are some of, dialled with dial (timeouts, credentials,
// TLS). It reads the cluster's layout from the first node that answers.
// When none does, it returns the store with the reason (see whyNoLayout),
// as Open does for a single Redis: the store reads the layout again when
// it is used, fails each operation with that reason (at once, once it is
// known) until a seed answers, and its Check reports it. It returns no store only when addrs is empty.
func newClusterStore(addrs []string, dial []redis.DialOption, opts Options) (store.Store, error) {
	s, err := startCluster(addrs, dial, opts)
	if s == nil {
		return nil, err
	}
	return s, err
}

// startCluster is newClusterStore with its concrete type.
func startCluster(addrs []string, dial []redis.DialOption, opts Options) (*clusterStore, error) {
	if len(addrs) == 0 {
		return nil, errors.New("store: a Redis Cluster needs at least one node address")
	}
	c := &clusterStore{opts: opts.withDefaults(), dial: dial, prefix: "sg:", pools: map[string]*nodePool{}, replicated: map[string]bool{}}
	c.cluster = &redisc.Cluster{
		StartupNodes: addrs,
		DialOptions:  dial,
		// redisc's pools serve its layout refreshes only.
		CreatePool: func(addr string, dial ...redis.DialOption) (*redis.Pool, error) {
			return &redis.Pool{
				MaxIdle:     2,
				IdleTimeout: time.Minute,
				Wait:        true,
				DialContext: func(ctx context.Context) (redis.Conn, error) {
					return redis.DialContext(ctx, "tcp", addr, dial...)
				},
			}, nil
		},
		LayoutRefresh: func(_, layout [redisc.HashSlots][]string) { c.setLayout(layout) },
	}
	ctx, cancel := c.operation(context.Background())
	defer cancel()
	return c, c.readLayout(ctx)
}

// errNoLayout is the error of a cluster store whose seeds answer, as
// cluster nodes, without a layout (CLUSTER SLOTS fails: a cluster still
// being created, or a user that may not run it).
var errNoLayout = &redisError{msg: "store: unavailable: redis: no seed node answered with the cluster's layout (CLUSTER SLOTS)",
	kind: []error{backend.ErrUnavailable}}

// readLayout reads the cluster's layout now, within ctx, when no seed
// has answered with it yet; on failure it records and returns why.
func (c *clusterStore) readLayout(ctx context.Context) error {
	if c.isClosed() {
		return unavailable(errClosed)
	}
	if c.laidOut.Load() {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- c.cluster.Refresh() }() // redisc's dials and reads take no context
	select {
	case err := <-done:
		if err == nil || c.laidOut.Load() {
			return nil
		}
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	if c.isClosed() { // closed while the layout was read
		return unavailable(errClosed)
	}
	why := c.whyNoLayout(ctx)
	c.recordNoLayout(why)
	return why
}

// recordNoLayout records why no seed answered with the layout, unless
// one has meanwhile.
func (c *clusterStore) recordNoLayout(why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.laidOut.Load() {
		c.noLayout.Store(&why)
	}
}

// whyNoLayout returns why no seed answered with the cluster's layout, in
// a sentence that names the problem (not a cluster node, a Sentinel, an
// evicting node, no connection): redisc's own error quotes addresses.
func (c *clusterStore) whyNoLayout(ctx context.Context) error {
	var last error = errNoLayout
	for _, addr := range c.cluster.StartupNodes {
		if c.isClosed() {
			return unavailable(errClosed)
		}
		conn, err := redis.DialContext(ctx, "tcp", addr, c.dial...)
		if err != nil {
			last = err
			continue
		}
		err = c.vetNode(ctx, addr, conn)
		conn.Close()
		if err != nil {
			return unavailable(err)
		}
	}
	return unavailable(last)
}

// close closes the store's connections.
func (c *clusterStore) close() {
	c.cluster.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed.Store(true)
	for addr, p := range c.pools {
		p.Close()
		delete(c.pools, addr)
	}
}

// isClosed reports whether close has run.
func (c *clusterStore) isClosed() bool { return c.closed.Load() }

// closedPool is the pool of every node once the store is closed: its
// borrows fail ("the store is closed"), and nothing is dialled.
var closedPool = func() *nodePool {
	p := &nodePool{Pool: &redis.Pool{}}
	p.Close()
	return p
}()

// setLayout records the primary of each slot, and which primaries have
// replicas.
func (c *clusterStore) setLayout(layout [redisc.HashSlots][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, nodes := range layout {
		c.slots[i] = ""
		if len(nodes) > 0 {
			c.slots[i] = nodes[0]
		}
		if len(nodes) > 1 {
			c.replicated[nodes[0]] = true
		}
	}
	c.laidOut.Store(true)
	c.noLayout.Store(nil)
}

// primary returns the address of slot's primary, "" when unknown.
func (c *clusterStore) primary(slot int) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.slots[slot]
}

// hasReplica reports whether the primary at addr was seen with a
// replica.
func (c *clusterStore) hasReplica(addr string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replicated[addr]
}

// primaries returns the address of every primary that owns a slot.
func (c *clusterStore) primaries() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	seen := map[string]bool{}
	for _, a := range c.slots {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// moved records a MOVED answer, and has the whole layout read again.
func (c *clusterStore) moved(slot int, addr string) {
	c.mu.Lock()
	c.slots[slot] = addr
	c.mu.Unlock()
	c.refreshSoon()
}

// refreshSoon reads the layout again in the background, one refresh at a
// time, at most one per minRefreshGap.
func (c *clusterStore) refreshSoon() {
	if c.isClosed() || !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer func() {
			time.Sleep(minRefreshGap)
			c.refreshing.Store(false)
		}()
		// A failure leaves the layout as it was; the next failure asks
		// again. Without any layout yet, it records why.
		if c.cluster.Refresh() != nil && !c.laidOut.Load() {
			ctx, cancel := c.operation(context.Background())
			defer cancel()
			c.recordNoLayout(c.whyNoLayout(ctx))
		}
	}()
}

// nodePool is the pool of one node, whose operations take turns (see
// turns) instead of waiting in the pool.
type nodePool struct {
	*redis.Pool
	turns *turns
}

// pool returns the store's pool for the node at addr: like NewPool's
// (PoolSize connections, as many kept idle), its operations taking turns
// instead of the pool's wait, each connection vetted (vetNode) when
// dialled and, once a connection was found dead, checked with a PING
// before reuse; after close, a closed pool.
func (c *clusterStore) pool(addr string) *nodePool {
	c.mu.RLock()
	p := c.pools[addr]
	c.mu.RUnlock()
	if p != nil {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		return closedPool
	}
	if p = c.pools[addr]; p != nil {
		return p
	}
	p = &nodePool{turns: newTurns(c.opts.PoolSize, tickOf(c.opts.Timeout)), Pool: &redis.Pool{
		// As newPool's: no churn, at most PoolSize per node; the turns
		// bound the connections borrowed, so the pool never waits.
		MaxIdle:     c.opts.PoolSize,
		MaxActive:   c.opts.PoolSize,
		IdleTimeout: 4 * time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			conn, err := redis.DialContext(ctx, "tcp", addr, c.dial...)
			if err != nil {
				return nil, err
			}
			if err := c.vetNode(ctx, addr, conn); err != nil {
				conn.Close()
				return nil, err
			}
			c.vettedAt.Store(time.Now().UnixNano())
			return conn, nil
		},
		TestOnBorrowContext: func(ctx context.Context, conn redis.Conn, idleSince time.Time) error {
			if err := c.revet(ctx, conn); err != nil {
				return err
			}
			if isRetry(ctx) || idleSince.UnixNano() <= c.droppedAt.Load() || time.Since(idleSince) > time.Minute {
				_, err := do(conn, ctx, "PING")
				return err
			}
			return nil
		},
	}}
	c.pools[addr] = p
	return p
}

// errNotCluster is the error of a cluster=true store whose node is not in
// cluster mode.
var errNotCluster = misconfigured("the server is not in cluster mode, but the store was configured for a Redis Cluster " +
	"(cluster=true): point it at a cluster node, or drop cluster=true")

// vetNode checks a connection to the node at addr ("" for unknown)
// before its first use: a cluster node (not a Sentinel, not a Redis out
// of cluster mode), with maxmemory-policy noeviction unless
// InsecureAllowEviction. It notes a primary with a replica connected
// (see noteReplicas).
func (c *clusterStore) vetNode(ctx context.Context, addr string, conn redis.Conn) error {
	info, err := redis.String(do(conn, ctx, "INFO", "server", "replication", "cluster", "memory"))
	if isReply(err) {
		return misconfigured("the Redis user may not run INFO, which a cluster store needs to vet its nodes")
	}
	if err != nil {
		return err
	}
	c.noteReplicas(addr, info)
	return c.nodeProblem(info)
}

// noteReplicas records the node at addr as a primary with replicas when
// its INFO replication says it has one connected. The layout lists a
// replica only once the cluster's gossip has its replication offset,
// which can take long after it synced: the primary itself knows at once.
func (c *clusterStore) noteReplicas(addr, info string) {
	if n, _ := infoField(info, "connected_slaves"); addr == "" || n == "" || n == "0" {
		return
	}
	if role, _ := infoField(info, "role"); role != "master" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicated[addr] = true
}

// nodeProblem returns what INFO says is wrong with a cluster node.
func (c *clusterStore) nodeProblem(info string) error {
	if mode, _ := infoField(info, "redis_mode"); mode == "sentinel" {
		return errSentinel
	}
	if enabled, _ := infoField(info, "cluster_enabled"); enabled != "1" {
		return errNotCluster
	}
	return memoryProblem(info, c.opts.InsecureAllowEviction)
}

// revet vets conn when no connection was vetted for RecheckInterval, as
// the single store does.
func (c *clusterStore) revet(ctx context.Context, conn redis.Conn) error {
	now := time.Now().UnixNano()
	last := c.vettedAt.Load()
	if now-last < int64(c.opts.RecheckInterval) || !c.vettedAt.CompareAndSwap(last, now) {
		return nil
	}
	if err := c.vetNode(ctx, "", conn); err != nil {
		c.vettedAt.Store(0)
		return err
	}
	return nil
}

// clusterScript is a script with its source, which a command redirected
// by ASK runs with EVAL (the importing node may not have it yet, and
// ASKING covers one command only).
type clusterScript struct {
	*redis.Script
	src  string
	keys int
}

func newClusterScript(keys int, src string) *clusterScript {
	src = strings.ReplaceAll(luaFrame(src), "FENCE", luaString(string(fence)))
	return &clusterScript{Script: redis.NewScript(keys, src), src: src, keys: keys}
}

// fence starts what is written at the key of a session whose mint must
// not complete: step 4 of a mint at the absent key of another session of
// the same credential (a mint between its steps 1 and 3), and an end at
// that of a session continuing the ended one (see End). It is any bytes
// that format.Parse reads as garbage (found, neither live nor ended); a
// tag unique to each fence follows it (fenceTag), so that the mint's
// step 3, which writes only if the key holds exactly what it saw, fails
// even if it saw an older fence there; a later mint, which sees this
// one, may replace it.
var fence = []byte{0x02}

// fenceTag returns the tag that makes one fence unlike any other.
func fenceTag() string { return rand.Text()[:8] }

// operation returns ctx bounded by the store's Timeout: one deadline for
// a whole operation, its steps, redirections, retries and waits.
func (c *clusterStore) operation(ctx context.Context) (context.Context, context.CancelFunc) {
	oc := newOpCtx(ctx, c.opts.Timeout)
	return oc, oc.end
}

// eval runs s on keys (all of one slot) with args, on the slot's primary.
func (c *clusterStore) eval(ctx context.Context, s *clusterScript, keys []string, args ...any) (any, error) {
	return c.evalOn(ctx, false, s, keys, args...)
}

// evalDurable is eval for a write a guarantee rests on: it answers only
// once a replica has acknowledged it (see acknowledged).
func (c *clusterStore) evalDurable(ctx context.Context, s *clusterScript, keys []string, args ...any) (any, error) {
	return c.evalOn(ctx, true, s, keys, args...)
}

func (c *clusterStore) evalOn(ctx context.Context, durable bool, s *clusterScript, keys []string, args ...any) (any, error) {
	return c.run(ctx, keys[0], durable, func(conn redis.Conn, asking bool) (any, error) {
		kv := make([]any, 0, len(keys)+len(args))
		for _, k := range keys {
			kv = append(kv, k)
		}
		kv = append(kv, args...)
		if asking {
			return do(conn, ctx, "EVAL", append([]any{s.src, s.keys}, kv...)...)
		}
		return s.DoContext(ctx, conn, kv...)
	})
}

// get runs GET key on its slot's primary.
func (c *clusterStore) get(ctx context.Context, key string) ([]byte, error) {
	raw, err := redis.Bytes(c.run(ctx, key, false, func(conn redis.Conn, _ bool) (any, error) {
		return do(conn, ctx, "GET", key)
	}))
	if errors.Is(err, redis.ErrNil) {
		return nil, nil
	}
	return raw, err
}

// getAll runs GET on each of keys, in one pipeline per primary of the
// layout: the values in keys' order, nil for an absent key. A key whose
// pipelined answer is an error (MOVED, ASK, TRYAGAIN, ...), every key of
// a node whose pipeline failed, and every key of a slot without a known
// primary go the per-key path instead (get: redirections followed,
// retries within the deadline).
func (c *clusterStore) getAll(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	byNode := map[string][]int{}
	var one []int
	for i, k := range keys {
		if addr := c.primary(redisc.Slot(k)); addr != "" {
			byNode[addr] = append(byNode[addr], i)
		} else {
			one = append(one, i)
		}
	}
	for addr, at := range byNode {
		replies, err := redis.Values(c.onNode(ctx, addr, false, func(conn redis.Conn) (any, error) {
			for _, i := range at {
				if err := conn.Send("GET", keys[i]); err != nil {
					return nil, err
				}
			}
			return do(conn, ctx, "") // flushes, and answers every reply
		}))
		if err != nil || len(replies) != len(at) {
			one = append(one, at...)
			continue
		}
		for j, i := range at {
			raw, err := redis.Bytes(replies[j], nil)
			switch {
			case err == nil:
				out[i] = raw
			case !errors.Is(err, redis.ErrNil):
				one = append(one, i)
			}
		}
	}
	for _, i := range one {
		raw, err := c.get(ctx, keys[i])
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}

// command runs one command whose first argument is its key.
func (c *clusterStore) command(ctx context.Context, name, key string, args ...any) (any, error) {
	return c.commandOn(ctx, false, name, key, args...)
}

// commandDurable is command for a write a guarantee rests on: it answers
// only once a replica has acknowledged it (see acknowledged).
func (c *clusterStore) commandDurable(ctx context.Context, name, key string, args ...any) (any, error) {
	return c.commandOn(ctx, true, name, key, args...)
}

func (c *clusterStore) commandOn(ctx context.Context, durable bool, name, key string, args ...any) (any, error) {
	return c.run(ctx, key, durable, func(conn redis.Conn, _ bool) (any, error) {
		return do(conn, ctx, name, append([]any{key}, args...)...)
	})
}

// acknowledged waits, on conn, whose last command was a write on the
// primary at addr, until one replica has acknowledged it (WAIT 1, at most
// ackTimeout or what is left of ctx), when addr was seen with a replica
// (hasReplica): without that, a sign-out answered done could be undone
// by a crash of the primary before its replica had it (Redis Cluster
// replicates asynchronously, and the replica is promoted). It returns
// errNotReplicated when none did; a primary without replicas has nothing
// that a failover could lose the write to.
func (c *clusterStore) acknowledged(ctx context.Context, conn redis.Conn, addr string) error {
	if !c.hasReplica(addr) {
		return nil
	}
	wait := ackTimeout
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline))
	}
	n, err := redis.Int(do(conn, ctx, "WAIT", 1, max(wait.Milliseconds(), 1)))
	switch {
	case err == nil && n >= 1:
		return nil
	case err != nil && !isReply(err):
		return err // the connection failed: run tries the write again
	}
	// No acknowledgement, or an error answer (UNBLOCKED: the node was
	// demoted while WAIT waited; a replica refuses WAIT).
	c.refreshSoon() // a replica that failed, or a failover, shows in the layout
	if role, rerr := redis.Values(do(conn, ctx, "ROLE")); rerr == nil && len(role) > 0 {
		if r, _ := redis.String(role[0], nil); r != "master" {
			// A failover demoted the node: the write may be lost with it
			// (or, graceful, be on the new primary). run writes it
			// again there.
			c.redone.Add(1)
			return errDemoted
		}
	}
	if err != nil {
		return err
	}
	c.unacked.Add(1)
	return errNotReplicated
}

// errDemoted is what acknowledged answers for a write whose primary was
// demoted before a replica acknowledged it: run tries the write again,
// where the layout now sends it (every write it waits for is safe to
// repeat).
var errDemoted = redis.Error("UNBLOCKED the primary was demoted before a replica acknowledged the write")

// run runs op on a connection to the primary of key's slot, following
// MOVED and ASK, and retrying, after a short pause, what a failover or a
// resharding answers meanwhile, until ctx's deadline. Its errors wrap
// store.ErrUnavailable. op's command must not have run when it answers a
// redirection; a command retried after a connection died may have run
// once already (every step of this store is a read, or a write that is
// conditional or idempotent, but for a continued session: see Mint).
// With durable, a write's answer waits for a replica's acknowledgement
// (see acknowledged), on the node that ran it.
func (c *clusterStore) run(ctx context.Context, key string, durable bool, op func(conn redis.Conn, asking bool) (any, error)) (any, error) {
	slot := redisc.Slot(key)
	pause := firstRetryPause
	redirects, asked := 0, ""
	var last error
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil, exhausted(ctx, last)
		}
		if c.isClosed() {
			return nil, unavailable(errClosed)
		}
		addr := asked
		if addr == "" {
			if why := c.noLayout.Load(); why != nil {
				// No seed answered yet, for a known reason: fail at once,
				// as a single store does, and have the layout read again.
				c.refreshSoon()
				return nil, *why
			}
			if addr = c.primary(slot); addr == "" {
				last = errors.New("no primary known for the slot")
				c.refreshSoon()
				if !sleep(ctx, &pause) {
					return nil, exhausted(ctx, last)
				}
				continue
			}
		}
		reply, err := c.onNode(ctx, addr, attempt > 0, func(conn redis.Conn) (any, error) {
			if asked != "" {
				if _, err := do(conn, ctx, "ASKING"); err != nil {
					return nil, err
				}
			}
			reply, err := op(conn, asked != "")
			if err == nil && durable {
				err = c.acknowledged(ctx, conn, addr)
			}
			return reply, err
		})
		asked = ""
		if err == nil {
			return reply, nil
		}
		if re := redisc.ParseRedir(err); re != nil {
			if redirects++; redirects > maxRedirects {
				return nil, unavailable(err)
			}
			if re.Type == "MOVED" {
				c.movedN.Add(1)
				c.moved(re.NewSlot, re.Addr)
			} else {
				c.askedN.Add(1)
				asked = re.Addr
			}
			continue
		}
		if err == errNotReplicated {
			// The write ran on the primary; only its replica's
			// acknowledgement is missing: its reply stands, for the steps
			// after it (see landed).
			return reply, err
		}
		var own *redisError
		if errors.As(err, &own) || !retryable(ctx, err) {
			return nil, unavailable(err)
		}
		last = err
		c.refreshSoon()
		if !sleep(ctx, &pause) {
			return nil, exhausted(ctx, last)
		}
	}
}

// onNode runs op on a pooled connection to addr, every command under ctx.
// A socket's timeout that ended it is reported as what ended ctx (see
// timeoutCause).
func (c *clusterStore) onNode(ctx context.Context, addr string, retry bool, op func(conn redis.Conn) (any, error)) (any, error) {
	if retry {
		ctx = retryCtx{ctx}
	}
	np := c.pool(addr)
	if err := np.turns.take(ctx); err != nil {
		return nil, err
	}
	defer np.turns.give()
	conn, err := np.GetContext(ctx)
	if err != nil {
		if dead(err) {
			c.droppedAt.Store(time.Now().UnixNano())
		}
		return nil, timeoutCause(ctx, err)
	}
	defer conn.Close()
	reply, err := op(&opConn{Conn: conn, ctx: ctx})
	if err != nil && dead(err) {
		c.droppedAt.Store(time.Now().UnixNano())
	}
	return reply, timeoutCause(ctx, err)
}

// retryable reports whether err is worth another attempt within the
// deadline: a node failing over, a slot moving, a connection refused or
// lost; not an answer of Redis's about the command, nor the deadline.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || poolClosed(err) {
		return false
	}
	if isReply(err) {
		return isReply(err, "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY", "UNBLOCKED")
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return false
	}
	return !errors.Is(err, redis.ErrNil) && !errors.Is(err, redis.ErrPoolExhausted)
}

// sleep waits *pause (then doubles it, up to lastRetryPause), and reports
// false when ctx ends first.
func sleep(ctx context.Context, pause *time.Duration) bool {
	t := time.NewTimer(*pause)
	defer t.Stop()
	*pause = min(2**pause, lastRetryPause)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// exhausted is the error of an operation whose deadline passed while it
// retried last.
func exhausted(ctx context.Context, last error) error {
	if last == nil {
		return unavailable(ctx.Err())
	}
	kind := []error{backend.ErrUnavailable}
	if err := contextError(ctx.Err()); err != nil {
		kind = append(kind, err)
	}
	return &redisError{msg: "store: unavailable: redis: " + reasonOf(last) + " until the deadline", kind: kind}
}

// Keys.

func (c *clusterStore) sessionKey(key string) string { return c.prefix + "s:" + key }
func (c *clusterStore) indexKey(user string) string  { return c.prefix + "u:" + userTag(user) }
func (c *clusterStore) credsKey(user string) string  { return c.prefix + "c:" + userTag(user) }
func (c *clusterStore) contsKey(user string) string  { return c.prefix + "k:" + userTag(user) }

// userKeys are the keys of indexScript: the user's index, credentials
// hash and continuations hash.
func (c *clusterStore) userKeys(user string) []string {
	return []string{c.indexKey(user), c.credsKey(user), c.contsKey(user)}
}
func (c *clusterStore) markKey(user, mark string) string {
	return c.prefix + "m:" + userTag(user) + ":" + mark
}

// userTag is the hash tag that puts a user's keys in one slot: {U}. Redis
// hashes what lies between the first { and the first } after it, the
// same for every key of the user; a user index that starts with } would
// make that empty (and Redis would hash each whole key), so it is tagged
// as {=U} instead, and so is one that starts with =, so that no two user
// indexes share a tag ("}p:x" and "=}p:x" did).
func userTag(user string) string {
	if strings.HasPrefix(user, "}") || strings.HasPrefix(user, "=") {
		return "{=" + user + "}"
	}
	return "{" + user + "}"
}

// Find returns the data of token's session if token's validator opens
// it: one GET on the primary that owns its key.
func (c *clusterStore) Find(token string) ([]byte, bool, error) {
	ctx, cancel := c.operation(context.Background())
	defer cancel()
	return backend.Find(token, func(key [format.KeyLen]byte) ([]byte, bool, error) {
		raw, err := c.get(ctx, c.sessionKey(string(key[:])))
		return raw, raw != nil, err
	})
}

// Lookup returns what is stored at key: one GET.
func (c *clusterStore) Lookup(ctx context.Context, key string) (format.Stored, error) {
	ctx, cancel := c.operation(ctx)
	defer cancel()
	raw, err := c.get(ctx, c.sessionKey(key))
	if err != nil {
		return format.Stored{}, err
	}
	return format.Parse(raw), nil
}

// clusterUpdate is updateScript, on one key.
var clusterUpdate = newClusterScript(1, updateLua)

// Commit is CommitCtx without a caller's context.
func (c *clusterStore) Commit(token string, data []byte, expires time.Time) error {
	return c.CommitCtx(context.Background(), token, data, expires)
}

// CommitCtx replaces the scs values and expiry of token's live session:
// one script on its key.
func (c *clusterStore) CommitCtx(ctx context.Context, token string, data []byte, expires time.Time) error {
	ttl := ttlUntil(expires)
	if ttl <= 0 {
		return nil
	}
	return c.update(ctx, token, "v", data, ttl)
}

// Touch replaces the record of token's live session.
func (c *clusterStore) Touch(ctx context.Context, token string, record []byte) error {
	if err := c.update(ctx, token, "r", record, ""); err != backend.ErrNotLive {
		return err
	}
	return nil
}

func (c *clusterStore) update(ctx context.Context, token, part string, b []byte, ttl any) error {
	sel, val, ok := format.Split(token)
	if !ok {
		return backend.ErrNotLive
	}
	ctx, cancel := c.operation(ctx)
	defer cancel()
	v := format.VerifierOf(val)
	done, err := redis.Int(c.eval(ctx, clusterUpdate, []string{c.sessionKey(sel.Key())}, v[:], part, b, ttl))
	if err == nil && done != 1 {
		return backend.ErrNotLive
	}
	return err
}

// Delete returns ErrUnsupported: see Store.
func (c *clusterStore) Delete(string) error { return backend.ErrUnsupported }

// ttlUntil returns the milliseconds left until t, at least 1 when t is
// after now.
func ttlUntil(t time.Time) int64 {
	d := time.Until(t)
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// Check reports whether the cluster can keep sessions: every primary of
// the layout is a cluster node that sees the cluster as ok, is a primary,
// does not evict (unless InsecureAllowEviction) and is not full; then it
// writes in the fingerprint's slot and compares the fingerprint, as the
// single store does.
func (c *clusterStore) Check(ctx context.Context, fingerprint []byte, claim bool) error {
	ctx, cancel := c.operation(ctx)
	defer cancel()
	if err := c.readLayout(ctx); err != nil {
		return err
	}
	primaries := c.primaries()
	if len(primaries) == 0 {
		return misconfigured("the cluster's layout names no primary")
	}
	for _, addr := range primaries {
		var problem error
		_, err := c.onNode(ctx, addr, false, func(conn redis.Conn) (any, error) {
			info, err := redis.String(do(conn, ctx, "INFO", "server", "replication", "cluster", "memory"))
			if err != nil {
				return nil, err
			}
			c.noteReplicas(addr, info)
			if problem = c.nodeProblem(info); problem != nil {
				return nil, nil
			}
			if role, _ := infoField(info, "role"); role != "master" {
				c.refreshSoon()
				problem = &redisError{msg: "store: unavailable: redis: a node the layout names as a primary is a replica: the cluster is failing over", kind: []error{backend.ErrUnavailable}}
				return nil, nil
			}
			state, err := redis.String(do(conn, ctx, "CLUSTER", "INFO"))
			if err != nil {
				return nil, err
			}
			if v, _ := infoField(state, "cluster_state"); v != "ok" {
				problem = &redisError{msg: "store: unavailable: redis: the cluster's state is not ok: some slots have no reachable primary", kind: []error{backend.ErrUnavailable}}
			}
			return nil, nil
		})
		if err != nil {
			return unavailable(err)
		}
		if problem != nil {
			return problem
		}
	}
	flag := "0"
	if claim {
		flag = "1"
	}
	fp := c.prefix + "fingerprint"
	stored, err := redis.Bytes(c.eval(ctx, clusterCheck, []string{fp, c.prefix + "health{" + fp + "}"}, flag, fingerprint))
	switch {
	case errors.Is(err, redis.ErrNil):
		return nil
	case err != nil:
		return err
	case !equalBytes(stored, fingerprint):
		return backend.ErrSecretMismatch
	}
	return nil
}

// clusterCheck writes KEYS[2] (in KEYS[1]'s slot), then records the
// fingerprint ARGV[2] at KEYS[1] unless one is there (ARGV[1] = "1") and
// answers the one that was there, or only reads it.
var clusterCheck = newClusterScript(2, `
redis.call('SET', KEYS[2], '1', 'PX', 60000)
if ARGV[1] == '1' then return redis.call('SET', KEYS[1], ARGV[2], 'NX', 'GET') end
return redis.call('GET', KEYS[1])`)

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// Close closes the store's connections (the store Open returns is an
// io.Closer). It returns nil; operations after it fail with
// store.ErrUnavailable.
func (c *clusterStore) Close() error {
	c.close()
	return nil
}
