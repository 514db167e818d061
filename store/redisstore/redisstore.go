package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
)

// redisStore is New's Store: sessions in Redis, on a redigo pool, under
// the keys the package doc lists. Writes that belong together run in one
// round trip (a script or MULTI/EXEC).
type redisStore struct {
	backend.ServerClock // Redis judges expiry by its own clock
	pool                *redis.Pool
	opts                Options
	// droppedAt is when (unix ns) a connection was last found dead: pooled
	// connections idle since before then are checked before reuse.
	droppedAt atomic.Int64
	// vettedAt is when (unix ns) a connection was last vetted (see
	// revet); 0 after a vet failed.
	vettedAt atomic.Int64
	// guard, when set (Sentinel: see Open), keeps writes off a primary
	// being demoted and decides the retries after a failover; nil for a
	// single Redis.
	guard guard
	// near is the near cache (Options.NearCache; see nearcache.go), nil
	// when off.
	near *nearCache
	// turns bounds the operations under way when the store made its pool
	// (Open); nil for a pool the caller made (New).
	turns *turns
}

// guard is what a store on a primary that may change under it (Redis
// Sentinel) adds to each operation: before waits until a write may start
// and returns its span, after confirms the write that ran on conn in
// that span (or asks for it to run again),
// and again decides whether a failed operation runs again within its
// deadline (after a pause).
type guard interface {
	before(ctx context.Context) (span, error)
	after(ctx context.Context, conn redis.Conn, sp span) error
	// queue and confirm are after in two halves, for a write that
	// pipelines its command with the confirmation (see eval): queue
	// sends the confirmation's commands unflushed, confirm reads their
	// replies.
	queue(ctx context.Context, conn redis.Conn) (queued, error)
	confirm(ctx context.Context, sp span, q queued, replies []any) error
	again(ctx context.Context, err error, pause *time.Duration) bool
}

const (
	sessionPrefix  = "sg:s:"
	userPrefix     = "sg:u:"
	fingerprintKey = "sg:fingerprint"
)

// New returns a store that keeps sessions in the Redis behind pool, with
// opts (the zero Options is the default). The Redis must be 7.0 or later,
// a primary, with maxmemory-policy noeviction. Call it before the pool is
// used: it wraps the pool's dial and its TestOnBorrowContext (stores that
// share a pool each add their checks). New panics if pool is nil or has
// neither Dial nor DialContext.
//
//   - Every new connection is checked before its first use: a Sentinel, a
//     cluster node, or (unless opts.InsecureAllowEviction) a
//     maxmemory-policy other than noeviction make it fail with
//     store.ErrMisconfigured, which every operation then returns.
//   - Once a connection has been found dead (Redis restarted, CLIENT KILL,
//     a network blip), every pooled connection idle since then is checked
//     with a PING before reuse, and an operation that met a dead connection
//     runs once more, with a PING on any pooled connection it borrows. With
//     that, the store recovers from a Redis restart at the first request
//     after it, without restarting the app. Every operation of this store
//     is safe to repeat (reads, or writes that are conditional or
//     idempotent).
//
// The pool's MaxActive (0: no limit) caps the connections; with Wait set,
// as NewPool sets it, an operation waits for a free one within its
// deadline, else it fails at once with "connection pool exhausted". A
// MaxIdle below MaxActive (or below the concurrency, with MaxActive 0)
// makes the pool close connections as they return, only to open new ones
// for the next burst: NewPool sets both to DefaultPoolSize.
//
// With opts.NearCache, the store keeps one more connection, dialled
// through the pool's dial but never pooled (see NearCache), and a
// goroutine that tends it: the store New returns then implements
// io.Closer, whose Close stops that goroutine and closes that connection
// (not the pool, which stays yours).
//
// Each operation holds at most one pooled connection at a time, and runs
// under one deadline (Options.Timeout, or the caller's when earlier) that
// covers its wait for a connection, its commands and its one retry. Its
// errors wrap store.ErrUnavailable and carry a short reason ("timeout",
// "connection refused", "READONLY: ..."), never Redis's reply text, a
// command's arguments, a key or the URL. The store logs nothing, and is
// safe for concurrent use.
func New(pool *redis.Pool, opts Options) store.Store {
	if pool == nil || pool.Dial == nil && pool.DialContext == nil {
		panic("sessiongate/redisstore: New needs a pool that can dial (NewPool makes one)")
	}
	r := &redisStore{pool: pool, opts: opts.withDefaults()}
	dial := pool.DialContext
	if dial == nil {
		plain := pool.Dial
		dial = func(context.Context) (redis.Conn, error) { return plain() }
	}
	pool.DialContext = func(ctx context.Context) (redis.Conn, error) {
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.vet(ctx, c); err != nil {
			c.Close()
			return nil, err
		}
		r.vettedAt.Store(time.Now().UnixNano())
		return c, nil
	}
	next := pool.TestOnBorrowContext
	pool.TestOnBorrowContext = func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
		if err := r.revet(ctx, c); err != nil {
			return err
		}
		if isRetry(ctx) || idleSince.UnixNano() <= r.droppedAt.Load() {
			if _, err := do(c, ctx, "PING"); err != nil || r.guard == nil {
				return err
			}
		}
		if next != nil {
			return next(ctx, c, idleSince)
		}
		return nil
	}
	if opts.NearCache != nil {
		var follow func(redis.Conn) (count, keep bool)
		if opts.sentinels != nil {
			follow = opts.sentinels.primaryNow
		}
		r.near = newNearCache(*opts.NearCache, r.opts.Timeout, pool.DialContext, follow)
		return &nearStore{r}
	}
	return r
}

// revet vets c when no connection was vetted for RecheckInterval: one
// borrower at a time, one INFO per interval. A failure makes every
// following borrow vet again, so every operation fails until Redis is
// fixed.
func (r *redisStore) revet(ctx context.Context, c redis.Conn) error {
	now := time.Now().UnixNano()
	last := r.vettedAt.Load()
	if now-last < int64(r.opts.RecheckInterval) || !r.vettedAt.CompareAndSwap(last, now) {
		return nil
	}
	if err := r.vet(ctx, c); err != nil {
		r.vettedAt.Store(0)
		return err
	}
	return nil
}

// retryKey marks the context of an operation's retry: every pooled
// connection it borrows is checked with a PING first.
type retryKey struct{}

// isRetry reports whether ctx is an operation's retry's: at once for the
// store's own contexts (an operation's first attempt runs under its
// *opCtx, a retry under a retryCtx), without walking the caller's chain
// of values, which every borrow would otherwise do.
func isRetry(ctx context.Context) bool {
	switch ctx.(type) {
	case retryCtx:
		return true
	case *opCtx:
		return false
	}
	return ctx.Value(retryKey{}) != nil
}

// retryCtx is the context of an operation's retry: the operation's own,
// answering true for retryKey. Unlike context.WithValue's, remaining sees
// through it to the operation's context (opCtx.left), so that a retry's
// commands take the operation's deadline exactly as its first attempt's.
type retryCtx struct{ context.Context }

func (r retryCtx) Value(key any) any {
	if key == (retryKey{}) {
		return true
	}
	return r.Context.Value(key)
}

// with runs op on one pooled connection, under the operation's deadline:
// Options.Timeout from now, or ctx's deadline when earlier. If the
// connection turns out to be dead (closed or reset, not an answer or a
// timeout), it runs op once more, within the same deadline, on a
// connection checked with a PING or newly dialled. op must not take
// another connection, and must issue its commands on conn: each of them
// runs under the operation's context, whatever context op passes.
//
// With a guard (Sentinel), it also runs op again, within the same
// deadline, while the guard says so (a primary being replaced).
func (r *redisStore) with(ctx context.Context, op func(conn redis.Conn) error) error {
	return r.run(ctx, false, op)
}

// write is with for an operation that writes: with a guard (Sentinel), it
// starts only while no failover is under way, and is confirmed after it
// ran (see guard).
func (r *redisStore) write(ctx context.Context, op func(conn redis.Conn) error) error {
	defer r.near.wrote()
	return r.run(ctx, true, op)
}

// run is with, and write when write is set.
func (r *redisStore) run(parent context.Context, write bool, op func(conn redis.Conn) error) error {
	oc := newOpCtx(parent, r.opts.Timeout)
	defer oc.end()
	var ctx context.Context = oc
	var (
		err error
		// pause is the guard's (Sentinel) wait before its next retry; made
		// only then, so that an operation without retries allocates
		// nothing for it.
		pause *time.Duration
	)
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			ctx = retryCtx{oc}
		}
		// A dial that failed to connect is not retried: Redis is down, and
		// retrying would only wait twice. A connection that died (during
		// its dial's checks, or under op) is, once.
		if err = r.attempt(oc, ctx, write, op); err == nil {
			break
		}
		if r.dropped(ctx, err) && attempt == 0 {
			continue
		}
		if r.guard == nil {
			break
		}
		if pause == nil {
			pause = new(time.Duration)
			*pause = retryPause
		}
		if !r.guard.again(ctx, err, pause) {
			break
		}
	}
	if err != nil {
		return unavailable(timeoutCause(ctx, err))
	}
	return nil
}

// timeoutCause returns, for err a socket's timeout, the error of the
// operation's context ctx once that is over: the socket's read deadline,
// never before the operation's, fired, and what ended the operation is
// its deadline (DeadlineExceeded) or its caller's cancellation
// (Canceled), which the timeout only carried to its command. Any other
// err, or a timeout while ctx is not over (a write's own timeout), is
// returned as is.
func timeoutCause(ctx context.Context, err error) error {
	if err == nil {
		return nil // before netErr, which errors.As moves to the heap
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		// remaining, not Err: the socket's timeout can come back before
		// the timer of a Done made for the operation has fired, and
		// remaining (opCtx.left) then answers what Err will.
		if _, _, ctxErr := remaining(ctx); ctxErr != nil {
			return ctxErr
		}
	}
	return err
}

// attempt runs op once, for run, with the guard's checks around a write,
// under ctx (oc, or oc with a value): op's connection is oc's.
func (r *redisStore) attempt(oc *opCtx, ctx context.Context, write bool, op func(conn redis.Conn) error) error {
	write = write && r.guard != nil
	var sp span
	if write {
		var err error
		if sp, err = r.guard.before(ctx); err != nil {
			return err
		}
	}
	// The turn is held with the connection, not while the guard makes a
	// write wait for a failover: reads go on meanwhile.
	if err := r.turns.take(ctx); err != nil {
		return err
	}
	defer r.turns.give()
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The operation's own: no allocation for it.
	c := &oc.conn
	*c = opConn{Conn: conn, ctx: ctx}
	if write {
		c.w = &pendingWrite{g: r.guard, sp: sp}
	}
	if err = op(c); err == nil && write && !c.w.confirmed {
		err = r.guard.after(ctx, c, sp)
	}
	return err
}

// dropped reports whether err is a connection that died rather than an
// answer, a timeout or a refusal, and notes the time.
func (r *redisStore) dropped(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !dead(err) {
		return false
	}
	r.droppedAt.Store(time.Now().UnixNano())
	return true
}

// opConn is the connection an operation runs on: each command runs under
// the operation's context, whichever context the caller passes (it is
// the operation's own or its parent), and Do too (see do).
type opConn struct {
	redis.Conn
	ctx context.Context
	// w is the confirmation a write owes its guard (Sentinel); nil for a
	// read, or without a guard.
	w *pendingWrite
}

// pendingWrite is the guard's confirmation of a write under way, which
// attempt runs after the write's op unless the op confirmed it itself,
// in the same round trip as its command (eval).
type pendingWrite struct {
	g         guard
	sp        span
	confirmed bool
}

// eval runs s with keysAndArgs on conn, an operation's connection: EVALSHA
// (EVAL when the server does not have the script yet). For a write with
// a guard (Sentinel), the guard's confirmation (WAIT) goes in the same
// round trip, pipelined after it, and the write is confirmed when eval
// returns (a failed confirmation is eval's error).
func eval(conn redis.Conn, s *redis.Script, keysAndArgs ...any) (any, error) {
	oc, ok := conn.(*opConn)
	if !ok || oc.w == nil {
		return s.Do(conn, keysAndArgs...)
	}
	w := oc.w
	w.confirmed = true
	if err := s.SendHash(oc, keysAndArgs...); err != nil {
		return nil, err
	}
	q, err := w.g.queue(oc.ctx, oc)
	if err != nil {
		return nil, err
	}
	replies, err := redis.Values(do(oc.Conn, oc.ctx, ""))
	if err != nil {
		return nil, err
	}
	if len(replies) != 1+q.replies {
		return nil, errors.New("store: unexpected number of replies to a script")
	}
	reply := replies[0]
	if e, failed := reply.(redis.Error); failed {
		if !strings.HasPrefix(string(e), "NOSCRIPT ") {
			return nil, e
		}
		// The server does not have the script yet (its first write since
		// it started): EVAL loads it, then the write is confirmed.
		if reply, err = s.Do(oc, keysAndArgs...); err != nil {
			return nil, err
		}
		return reply, w.g.after(oc.ctx, oc, w.sp)
	}
	return reply, w.g.confirm(oc.ctx, w.sp, q, replies[1:])
}

func (c *opConn) Do(cmd string, args ...any) (any, error) {
	return do(c.Conn, c.ctx, cmd, args...)
}

func (c *opConn) DoContext(_ context.Context, cmd string, args ...any) (any, error) {
	return do(c.Conn, c.ctx, cmd, args...)
}

// DoWithTimeout is Do: the operation's deadline, never later than the
// one timeout was taken from, bounds the command.
func (c *opConn) DoWithTimeout(_ time.Duration, cmd string, args ...any) (any, error) {
	return do(c.Conn, c.ctx, cmd, args...)
}

func (c *opConn) Receive() (any, error) {
	return receive(c.Conn, c.ctx)
}

// ReceiveWithTimeout is Receive, as DoWithTimeout is Do.
func (c *opConn) ReceiveWithTimeout(time.Duration) (any, error) {
	return receive(c.Conn, c.ctx)
}

func (c *opConn) ReceiveContext(context.Context) (any, error) {
	return receive(c.Conn, c.ctx)
}

// do runs cmd on c under ctx's deadline, with no goroutine of its own
// (redigo's DoContext starts one per command): it fails at once with
// ctx's error when ctx has ended, else the command's reply must come
// before the deadline (the socket's read deadline), or it fails with a
// timeout. A cancellation while the command runs is thus seen at the
// operation's next command, the deadline at once. Every operation of the
// stores has a deadline (Options.Timeout); without one (a background
// watcher's context), do is redis.DoContext, which also honours a
// cancellation. A connection that cannot take a read timeout (a caller's
// wrapper) gets redis.DoContext too.
func do(c redis.Conn, ctx context.Context, cmd string, args ...any) (any, error) {
	d, ok, err := remaining(ctx)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return redis.DoContext(c, ctx, cmd, args...)
	}
	reply, err := redis.DoWithTimeout(c, d, cmd, args...)
	if err != nil && noTimeout(err) {
		return redis.DoContext(c, ctx, cmd, args...)
	}
	return reply, err
}

// receive is do for a reply to a command sent before (Send, Flush).
func receive(c redis.Conn, ctx context.Context) (any, error) {
	d, ok, err := remaining(ctx)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return redis.ReceiveContext(c, ctx)
	}
	reply, err := redis.ReceiveWithTimeout(c, d)
	if err != nil && noTimeout(err) {
		return redis.ReceiveContext(c, ctx)
	}
	return reply, err
}

// remaining returns how long ctx leaves until its deadline (ok false when
// it has none), or the error of a ctx that has ended or whose deadline
// has passed.
func remaining(ctx context.Context) (d time.Duration, ok bool, err error) {
	if oc := opOf(ctx); oc != nil {
		d, err := oc.left()
		return d, err == nil, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false, nil
	}
	if d = time.Until(deadline); d <= 0 {
		return 0, false, context.DeadlineExceeded
	}
	return d, true, nil
}

// noTimeout reports whether err is redigo's answer for a connection that
// does not implement redis.ConnWithTimeout (its error is not exported).
func noTimeout(err error) bool {
	_, isReply := err.(redis.Error)
	return !isReply && strings.HasSuffix(err.Error(), "does not support ConnWithTimeout")
}

// NewPool returns a redigo pool for a single Redis's URL,
// redis://[user:password@]host[:port][/db] or rediss://... (TLS, with
// the system's roots), with the timeouts a request path needs: 2 s to
// connect; each operation bounded by the store's Options.Timeout (default
// 2 s), the connection's own read and write timeouts (30 s) being only a
// backstop, so that a Timeout above 2 s is honoured; idle connections
// checked with a PING after a minute; at most DefaultPoolSize connections
// (MaxActive), and as many kept idle (MaxIdle), so that no burst of
// requests opens connections only to close them again; Wait set, so that
// beyond MaxActive an operation waits its turn within its deadline.
// Change MaxActive and MaxIdle together, before New. The URL is checked here; no
// connection is made yet. An error never shows any part of the URL: only
// what is wrong with it. A Sentinel or Cluster URL is refused: Open
// serves those (and single Redis too, with TLS options).
func NewPool(rawURL string) (*redis.Pool, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if u.mode != single {
		return nil, errors.New("store: the Redis URL is a Sentinel or Cluster URL, which NewPool does not take: use redisstore.Open")
	}
	return u.singlePool(nil, Options{}.withDefaults()), nil
}

// Find returns the data of token's session if token's validator opens
// it: one GET, under the store's Timeout.
func (r *redisStore) Find(token string) ([]byte, bool, error) {
	ctx := context.Background()
	return backend.Find(token, func(key [format.KeyLen]byte) (raw []byte, found bool, err error) {
		err = r.with(ctx, func(conn redis.Conn) (err error) {
			raw, err = redis.Bytes(do(conn, ctx, "GET", sessionPrefix+string(key[:])))
			if errors.Is(err, redis.ErrNil) {
				return nil
			}
			found = err == nil
			return err
		})
		return raw, found, err
	})
}

// updateScript replaces the record (ARGV[2] = "r") or the scs values
// ("v") of a live session with ARGV[3], if the token's verifier (ARGV[1])
// still matches, with a new expiry in ms (ARGV[4]) or the one it has
// (""): a session ended or minted anew meanwhile is left alone. It
// answers 1 when it wrote, 0 when there was no such session.
var updateScript = redis.NewScript(1, luaFrame(updateLua))

// updateLua is updateScript's source, which the cluster store runs too.
const updateLua = `
local cur = redis.call('GET', KEYS[1])
if not cur or string.len(cur) < RECORD_AT or string.sub(cur, 1, NONCE_AT) ~= ARGV[1] then return 0 end
local hi, lo = string.byte(cur, RECORD_LEN_AT + 1, RECORD_LEN_AT + 2)
local n = hi * 256 + lo
local rec = string.sub(cur, RECORD_AT + 1, RECORD_AT + n)
local vals = string.sub(cur, RECORD_AT + n + 1)
if ARGV[2] == 'r' then rec = ARGV[3] else vals = ARGV[3] end
local len = string.len(rec)
local v = string.sub(cur, 1, RECORD_LEN_AT) .. string.char(math.floor(len / 256), len % 256) .. rec .. vals
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], v, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], v, 'PX', ARGV[4])
end
return 1`

// Commit is CommitCtx without a caller's context: the store's Timeout
// bounds it.
func (r *redisStore) Commit(token string, data []byte, expires time.Time) error {
	return r.CommitCtx(context.Background(), token, data, expires)
}

// CommitCtx replaces the scs values and expiry of token's session if
// token's validator still opens it, in one round trip; ErrNotLive
// otherwise. scs's Commit calls it with the request's context.
func (r *redisStore) CommitCtx(ctx context.Context, token string, data []byte, expires time.Time) error {
	ttl := r.ttl(expires)
	if ttl <= 0 {
		return nil // scs commits an expired session: it is gone anyway
	}
	return r.update(ctx, token, "v", data, ttl)
}

// Touch replaces the record of token's live session, keeping its scs
// values and expiry.
func (r *redisStore) Touch(ctx context.Context, token string, record []byte) error {
	if err := r.update(ctx, token, "r", record, ""); err != backend.ErrNotLive {
		return err
	}
	return nil
}

// update runs updateScript for token.
func (r *redisStore) update(ctx context.Context, token, part string, b []byte, ttl any) error {
	sel, val, ok := format.Split(token)
	if !ok {
		return backend.ErrNotLive
	}
	v := format.VerifierOf(val)
	done := 0
	err := r.write(ctx, func(conn redis.Conn) (err error) {
		done, err = redis.Int(eval(conn, updateScript, sessionPrefix+sel.Key(), v[:], part, b, ttl))
		return err
	})
	if err == nil && done != 1 {
		return backend.ErrNotLive
	}
	return err
}

// Delete returns ErrUnsupported: see Store.
func (r *redisStore) Delete(string) error { return backend.ErrUnsupported }

// Lookup returns what is stored at key: one GET, or none with a near
// cache that holds it.
func (r *redisStore) Lookup(ctx context.Context, key string) (format.Stored, error) {
	if r.near != nil {
		return r.near.lookup(ctx, key, r.lookup)
	}
	return r.lookup(ctx, key)
}

// lookup is Lookup's GET.
func (r *redisStore) lookup(ctx context.Context, key string) (format.Stored, error) {
	var raw []byte
	err := r.with(ctx, func(conn redis.Conn) (err error) {
		raw, err = redis.Bytes(do(conn, ctx, "GET", sessionPrefix+key))
		if errors.Is(err, redis.ErrNil) {
			return nil
		}
		return err
	})
	if err != nil {
		return format.Stored{}, err
	}
	return format.Parse(raw), nil
}

// mintScript writes a session (KEYS[1]) and its entry in its user's index
// (KEYS[2]) if the key still holds what the caller saw (ARGV[5], "" for
// nothing) and the credential's mark (KEYS[3], the session's own key when
// it has none) is not the mark of an ended session. With a credential id
// (ARGV[7]), it first ends, as replaced, the user's other live sessions
// minted from the same credential. The index keeps live members only and
// expires with its last session: NX sets an expiry on a new index, GT only
// ever extends it. With a session to continue (KEYS[4], with nonce
// ARGV[8]; the session's own key and "" when none), it mints only if that
// one is still live, and in the same step deletes it and drops ARGV[9]
// from the index (unless it is the key minted). With a limit (ARGV[10],
// "0" for none), it then ends the user's other live sessions least
// recently used (the record's last seen time, read from its first bytes as
// format.RecordLastSeen does; ties by member) until, with the new one, at
// most that many are live: each key keeps the mark of an ended session for
// its remaining TTL and leaves the index. It answers 1 when it minted (with
// a limit: an array, 1 then the member and the former value of each
// session it ended), 0 on a conflict, -1 when the credential was signed
// out, -2 when the session to continue ended meanwhile.
var mintScript = redis.NewScript(4, luaFrame(`
local function uvarint(s, pos)
  local n, mul = 0, 1
  while true do
    local b = string.byte(s, pos)
    if not b then return nil, pos end
    pos = pos + 1
    n = n + (b % 128) * mul
    if b < 128 then return n, pos end
    mul = mul * 128
  end
end
local function lastSeen(v)
  if string.byte(v, RECORD_AT + 1) ~= RECORD_VERSION then return -1 end
  local created, pos = uvarint(v, RECORD_AT + 2)
  if not created then return -1 end
  local delta = uvarint(v, pos)
  if not delta then return -1 end
  if delta % 2 == 0 then delta = delta / 2 else delta = -(delta + 1) / 2 end
  return created + delta
end
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[5] then return 0 end
if KEYS[3] ~= KEYS[1] and redis.call('GET', KEYS[3]) == ENDED then return -1 end
if ARGV[8] ~= '' then
  local old = redis.call('GET', KEYS[4])
  if not old or string.sub(old, 1, 1) ~= LIVE or string.sub(old, NONCE_AT + 1, CRED_AT) ~= ARGV[8] then return -2 end
end
if ARGV[7] ~= '' then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], ARGV[4], '+inf', 'BYSCORE')) do
    local k = SESSION_PREFIX .. m
    if m ~= ARGV[6] and redis.call('GETRANGE', k, 0, 0) == LIVE
      and redis.call('GETRANGE', k, CRED_AT, CRED_AT + CRED_LEN - 1) == ARGV[7] then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[2], m)
    end
  end
end
if ARGV[8] ~= '' and KEYS[4] ~= KEYS[1] then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[2], ARGV[9])
end
local ended = nil
local max = tonumber(ARGV[10])
if max > 0 then
  ended = {1}
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], ARGV[4], '+inf', 'BYSCORE')) do
    if m ~= ARGV[6] then
      local v = redis.call('GET', SESSION_PREFIX .. m)
      if v and string.sub(v, 1, 1) == LIVE then
        table.insert(live, {m, lastSeen(v), v})
      end
    end
  end
  table.sort(live, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local i = 1
  while #live - i + 2 > max do
    local k = SESSION_PREFIX .. live[i][1]
    local ttl = redis.call('PTTL', k)
    if ttl > 0 then redis.call('SET', k, ENDED, 'PX', ttl) else redis.call('DEL', k) end
    redis.call('ZREM', KEYS[2], live[i][1])
    table.insert(ended, live[i][1])
    table.insert(ended, live[i][3])
    i = i + 1
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
redis.call('PEXPIREAT', KEYS[2], ARGV[3], 'NX')
redis.call('PEXPIREAT', KEYS[2], ARGV[3], 'GT')
if ended then return ended end
return 1`))

// replaceScript ends a replaced session (KEYS[1]) if it still holds the
// live session minted with nonce ARGV[1]: the key is deleted, and the
// session (ARGV[2]) leaves its user's index (KEYS[2]).
var replaceScript = redis.NewScript(2, luaFrame(`
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, 1) ~= LIVE or string.sub(cur, NONCE_AT + 1, CRED_AT) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1`))

// luaFrame replaces the frame's names in a script by their values, so that
// the scripts and the Go code read one layout (internal/format's frame).
func luaFrame(script string) string {
	return strings.NewReplacer(
		"SESSION_PREFIX", luaString(sessionPrefix),
		"RECORD_LEN_AT", strconv.Itoa(format.RecordLenAt),
		"RECORD_AT", strconv.Itoa(format.RecordAt),
		"RECORD_VERSION", strconv.Itoa(format.RecordVersion),
		"NONCE_AT", strconv.Itoa(format.NonceAt),
		"CRED_AT", strconv.Itoa(format.CredAt),
		"CRED_LEN", strconv.Itoa(format.CredentialLen),
		"ENDED", luaString(string(format.Ended)),
		"LIVE", luaString(string([]byte{format.FrameLive})),
	).Replace(script)
}

// luaString returns s as a string literal of Redis's Lua (5.1), whose only
// numeric escape is decimal (\ddd): Go's quoting writes \x01, which that
// Lua reads as "x01".
func luaString(s string) string {
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= ' ' && c <= '~' && c != '"' && c != '\\' {
			b = append(b, c)
		} else {
			b = fmt.Appendf(b, `\%03d`, c)
		}
	}
	return string(append(b, '"'))
}

// Mint writes the session and its index entry in one script, if the key
// still holds what m.Replace was read from and the credential was not
// signed out; with m.Limit, the same script ends the user's least recently
// used sessions beyond the limit, so that on one Redis a user never has
// more than Limit.Max live sessions.
func (r *redisStore) Mint(ctx context.Context, m backend.NewSession) error {
	if !m.Valid() {
		return backend.ErrBadMint
	}
	sel, val, _ := format.Split(m.Token)
	ttl := r.ttl(m.Expires)
	if ttl <= 0 {
		return backend.ErrExpired
	}
	key := sel.Key()
	value := format.Frame(val, m.Nonce, m.Credential, m.Record, m.Data)
	mark, cred := sessionPrefix+key, ""
	if m.Mark != "" {
		mark = sessionPrefix + m.Mark
	}
	if m.Credential != (format.Credential{}) {
		cred = string(m.Credential[:])
	}
	old, oldNonce, oldMember := sessionPrefix+key, []byte(nil), ""
	if c := m.Continues; c != nil {
		old, oldNonce, oldMember = sessionPrefix+c.Key, format.PadNonce(c.Nonce), c.Key
	}
	limit := 0
	if m.Limit != nil && m.Limit.Max > 0 {
		limit = m.Limit.Max
	}
	done := 0
	var ended []backend.Entry
	err := r.write(ctx, func(conn redis.Conn) (err error) {
		// A retry after a lost answer finds this very value and reports a
		// conflict: the caller then looks the key up and finds it minted
		// (what a lost answer's limit ended is not reported: those keys
		// keep their mark until they would have expired).
		reply, err := eval(conn, mintScript, sessionPrefix+key, userPrefix+m.User, mark, old,
			value, ttl, m.Expires.UnixMilli(), time.Now().UnixMilli(), m.Replace.Raw(), key, cred,
			oldNonce, oldMember, limit)
		done, ended, err = mintReply(reply, err)
		return err
	})
	if err == nil && done == 1 && m.Limit != nil {
		m.Limit.Ended = ended
	}
	switch {
	case err != nil:
		return err
	case done == -1:
		return backend.ErrSignedOut
	case done == -2:
		return backend.ErrNotContinued
	case done != 1:
		return backend.ErrConflict
	}
	return nil
}

// mintReply reads mintScript's answer: its code, and the sessions its
// limit ended.
func mintReply(reply any, err error) (int, []backend.Entry, error) {
	values, isArray := reply.([]any)
	if err != nil || !isArray {
		done, err := redis.Int(reply, err)
		return done, nil, err
	}
	if len(values)%2 != 1 {
		return 0, nil, errors.New("store: unexpected answer from the mint script")
	}
	done, err := redis.Int(values[0], nil)
	if err != nil {
		return 0, nil, err
	}
	var ended []backend.Entry
	for i := 1; i < len(values); i += 2 {
		member, err1 := redis.String(values[i], nil)
		raw, err2 := redis.Bytes(values[i+1], nil)
		if err := errors.Join(err1, err2); err != nil {
			return 0, nil, err
		}
		ended = append(ended, backend.Entry{Key: member, Stored: format.Parse(raw)})
	}
	return done, ended, nil
}

// End marks sessions ended (or removes replaced ones) and drops them from
// their users' indexes, in one MULTI. With a strict near cache, it then
// waits for its fence (see NearCache.Strict).
func (r *redisStore) End(ctx context.Context, ends ...backend.Ending) error {
	if len(ends) == 0 {
		return nil
	}
	return r.near.settle(ctx, r.transaction(ctx, func(conn redis.Conn) {
		for _, e := range ends {
			if e.Replaced {
				replaceScript.Send(conn, sessionPrefix+e.Key, userPrefix+e.User, format.PadNonce(e.Nonce), e.Key)
				continue
			}
			if ttl := r.ttl(e.Until); ttl > 0 {
				conn.Send("SET", sessionPrefix+e.Key, format.Ended, "PX", ttl)
				if e.Mark != "" {
					conn.Send("SET", sessionPrefix+e.Mark, format.Ended, "PX", ttl)
				}
			} else {
				conn.Send("DEL", sessionPrefix+e.Key)
			}
			if e.User != "" {
				conn.Send("ZREM", userPrefix+e.User, e.Key)
			}
		}
	}))
}

// List returns a page of user's index, latest expiry first: one round
// trip reads the page's entries from the index (pageScript: the place of
// after by rank, then the entries that follow it), a second their
// sessions in one MGET. Members whose session is gone are removed.
func (r *redisStore) List(ctx context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	idx := userPrefix + user
	var (
		page   []backend.IndexEntry
		more   bool
		values [][]byte
	)
	err := r.with(ctx, func(conn redis.Conn) (err error) {
		page, more, err = readIndexPage(conn, idx, after, limit)
		if err != nil || len(page) == 0 {
			return err
		}
		args := make([]any, len(page))
		for i, e := range page {
			args[i] = sessionPrefix + e.Key
		}
		values, err = redis.ByteSlices(do(conn, ctx, "MGET", args...))
		if err == nil && len(values) != len(page) {
			err = errors.New("store: unexpected answer to MGET")
		}
		return err
	})
	if err != nil {
		return nil, backend.Position{}, err
	}
	entries := make([]backend.Entry, 0, len(page))
	var gone []any
	for i, v := range values {
		s := format.Parse(v)
		if !s.Live() {
			gone = append(gone, page[i].Key)
			continue
		}
		entries = append(entries, backend.Entry{Key: page[i].Key, Stored: s})
	}
	if len(gone) > 0 {
		// Best effort: a failure here leaves entries a later call drops.
		r.with(ctx, func(conn redis.Conn) error {
			_, err := do(conn, ctx, "ZREM", append([]any{idx}, gone...)...)
			return err
		})
	}
	return entries, backend.Next(page, more), nil
}

// readIndexPage reads a List page of the index idx on conn, in one round
// trip (pageScript; see backend.Window).
func readIndexPage(conn redis.Conn, idx string, after backend.Position, limit int) ([]backend.IndexEntry, bool, error) {
	limit = max(limit, 1)
	read, err := indexEntries(redis.Strings(eval(conn, pageScript, append([]any{idx}, pageArgs(after, limit)...)...)))
	if err != nil {
		return nil, false, err
	}
	page, more := backend.Window(read, limit)
	return page, more, nil
}

// pageArgs are pageScript's arguments for a page of limit (at least 1)
// entries after after.
func pageArgs(after backend.Position, limit int) []any {
	at := ""
	if !after.IsZero() {
		at = strconv.FormatInt(after.Expires, 10)
	}
	return []any{at, after.Key, time.Now().UnixMilli(), limit + 1}
}

// pageScript reads, from a user's index (KEYS[1]), the ARGV[4] entries
// that come after the position (ARGV[1], its expiry in ms, and ARGV[2],
// its member; "" and "" for the start) in the index's order (score
// descending, then member descending: ZRANGE ... REV) and expire after
// ARGV[3] (now, in ms), as member, score pairs. The position's place is a
// rank: the member's own (ZREVRANK) while it is in the index with that
// score, else the count of the members above it, those of a higher score
// (ZCOUNT) and, by a binary search over the ranks of those of its score,
// of that score with a higher member. A page thus costs
// O(log n + ARGV[4]) for a user with n sessions, or O(log n · log t +
// ARGV[4]) when the position's entry has left the index and t entries
// share its expiry, however many do, in one round trip. Members are
// compared byte by byte, as Redis orders them (Lua's own comparison of
// strings follows the server's locale). It only reads.
var pageScript = redis.NewScript(1, pageLua)

// pageLua is pageScript's source, which the cluster store runs too.
const pageLua = `#!lua flags=no-writes
local idx, key = KEYS[1], ARGV[2]
local function below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local start = 0
if key ~= '' then
  local at = tonumber(ARGV[1])
  local rank = redis.call('ZREVRANK', idx, key)
  if rank and tonumber(redis.call('ZSCORE', idx, key)) == at then
    start = rank + 1
  else
    local lo = redis.call('ZCOUNT', idx, '(' .. ARGV[1], '+inf')
    local hi = lo + redis.call('ZCOUNT', idx, ARGV[1], ARGV[1])
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if below(redis.call('ZRANGE', idx, mid, mid, 'REV')[1], key) then hi = mid else lo = mid + 1 end
    end
    start = lo
  end
end
local now, out = tonumber(ARGV[3]), {}
local read = redis.call('ZRANGE', idx, start, start + tonumber(ARGV[4]) - 1, 'REV', 'WITHSCORES')
for i = 1, #read, 2 do
  if tonumber(read[i + 1]) <= now then break end
  out[#out + 1] = read[i]
  out[#out + 1] = read[i + 1]
end
return out`

// indexEntries reads a ZRANGE ... WITHSCORES answer.
func indexEntries(pairs []string, err error) ([]backend.IndexEntry, error) {
	if err != nil {
		return nil, err
	}
	if len(pairs)%2 != 0 {
		return nil, errors.New("store: unexpected answer to ZRANGE")
	}
	out := make([]backend.IndexEntry, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		score, err := strconv.ParseFloat(pairs[i+1], 64)
		if err != nil {
			return nil, errors.New("store: unexpected score in ZRANGE")
		}
		out = append(out, backend.IndexEntry{Key: pairs[i], Expires: int64(score)})
	}
	return out, nil
}

// transaction sends the commands queued by fill in one MULTI/EXEC round
// trip. It fails if any of them failed: refused when queued (EXEC then
// fails), or when EXEC ran it (a script's command refused: its error is
// one of EXEC's replies, and the others still ran).
//
// With a guard (Sentinel), the guard's confirmation (WAIT) is pipelined
// after the EXEC, in the same round trip, as eval does for a script.
func (r *redisStore) transaction(ctx context.Context, fill func(redis.Conn)) error {
	return r.write(ctx, func(conn redis.Conn) error {
		conn.Send("MULTI")
		fill(conn)
		oc, ok := conn.(*opConn)
		if !ok || oc.w == nil {
			return execReplies(do(conn, ctx, "EXEC"))
		}
		w := oc.w
		w.confirmed = true
		if err := oc.Conn.Send("EXEC"); err != nil {
			return err
		}
		q, err := w.g.queue(oc.ctx, oc)
		if err != nil {
			return err
		}
		// Every pending reply: MULTI's, each command's QUEUED, EXEC's,
		// then the confirmation's.
		replies, err := redis.Values(do(oc.Conn, oc.ctx, ""))
		if err != nil {
			return err
		}
		exec := len(replies) - q.replies - 1
		if exec < 1 {
			return errors.New("store: unexpected number of replies to a transaction")
		}
		// A command Redis refused to queue (NOREPLICAS, READONLY, OOM)
		// says why EXEC then answers EXECABORT: its error is the one the
		// guard judges (a refusal during a failover is retried).
		for _, reply := range replies[:exec] {
			if err, failed := reply.(redis.Error); failed {
				return err
			}
		}
		if err := execReplies(replies[exec], nil); err != nil {
			return err
		}
		return w.g.confirm(oc.ctx, w.sp, q, replies[exec+1:])
	})
}

// execReplies returns the error of a transaction from EXEC's reply (and
// err, its Do's): its own (EXECABORT) or the first of its commands'.
func execReplies(reply any, err error) error {
	replies, err := redis.Values(reply, err)
	if err != nil {
		return err
	}
	for _, reply := range replies {
		if err, failed := reply.(redis.Error); failed {
			return err
		}
	}
	return nil
}

// ttl returns the milliseconds left until t, at least 1 when t is after
// now.
func (r *redisStore) ttl(t time.Time) int64 {
	d := t.Sub(time.Now())
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}
