package guesslimit

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxClients bounds a Limiter's memory. Past it, clients not yet seen are
// not tracked until a sweep makes room (fail open: a flood of addresses
// cannot lock everyone out).
//
// The table is a plain map, not a golang-lru/v2 Cache, on purpose: an LRU
// cache makes room by evicting its least recently used entry, and here
// that would forgive a locked-out client, so that an attacker could cycle
// through 100,000 addresses to unlock its own. Full, the table keeps every
// lockout it holds and leaves newcomers untracked instead, which an LRU
// cache only does if it is never allowed to evict; what remains of it then
// is a second lock (every operation here must hold l.mu anyway, since a
// client's bucket, lockout flag and queue change together) and a recency
// list that nothing reads: the sweep visits every entry whatever its age,
// because how soon a bucket is full again does not follow from when it
// last failed.
const maxClients = 100_000

// Limiter counts failed credentials per client address (IPv6 by its /64,
// see ClientKey): a token bucket of burst tokens per client, each failure
// takes one, one comes back per interval. A client with no token left is
// limited (Wait > 0) until one has come back. Failures past an empty
// bucket are not carried as debt: a limited client that keeps failing is
// limited for one interval after its last failure, and forgiven entirely
// burst intervals after it.
//
// A client is tracked from its first failure until its bucket is full
// again; the table of tracked clients is swept at most once per interval.
// At most 100,000 clients are tracked: past that, new clients are not
// limited (it fails open) until a sweep makes room, while those already
// tracked stay limited.
//
// A nil *Limiter limits nothing. A Limiter is safe for concurrent use.
// It logs nothing: Failed tells its caller when to log a lockout, once.
type Limiter struct {
	limit    rate.Limit
	burst    int
	interval time.Duration
	now      func() time.Time
	// slack is half a nanosecond's worth of refill. At times on the
	// nanosecond, an exact count of tokens is a whole number of such
	// worths; rate counts in floating point (seconds times tokens per
	// second), which can fall an ulp short of a whole token after a whole
	// number of intervals (49 s, 4m9s...). Comparing with this slack
	// decides as exact arithmetic would, as rate's own AllowN does (it
	// ignores a wait shorter than a nanosecond).
	slack float64

	mu        sync.Mutex
	clients   map[string]*client
	lastSweep time.Time
	// tracked is len(clients), read without the lock so that the usual
	// case (no client has failed lately) costs one atomic load.
	tracked atomic.Int64
}

// client is one client's bucket and upstream queue. Limiter.mu guards it.
type client struct {
	bucket *rate.Limiter
	// announced is true once this lockout was reported: a lockout is
	// reported once, from the failure that starts it until the bucket is
	// full again.
	announced bool
	// turn holds one value while a validation of this client's is
	// upstream; made when first needed.
	turn chan struct{}
	// waiting counts requests holding or waiting for turn: the entry is
	// not swept while any does.
	waiting int
	// latest is the latest time the bucket was handed (see clock).
	latest time.Time
}

// New returns a Limiter that lets each client fail burst times, then once
// per interval, reading the time from now (time.Now when nil) and never
// from anywhere else. The middleware's defaults are 20 and 3 s. A
// negative burst returns nil, which limits nothing; a burst of 0 limits a
// client from its first failure.
//
// New panics if interval is not positive.
func New(burst int, interval time.Duration, now func() time.Time) *Limiter {
	if burst < 0 {
		return nil
	}
	if interval <= 0 {
		panic("sessiongate/guesslimit: interval must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		limit:     rate.Every(interval),
		burst:     burst,
		interval:  interval,
		now:       now,
		slack:     0.5 / float64(interval),
		clients:   map[string]*client{},
		lastSweep: now(),
	}
}

// ClientKey is who is limited for the address ip: an IPv4 address (an
// IPv4-mapped IPv6 one too, however written) in dotted form, an IPv6
// address by its /64 (one
// subscriber's usual allocation) in prefix notation, anything unparsable
// as is. Callers log it to name a limited client.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return ip
	case a.Unmap().Is4():
		return a.Unmap().String() // one key however the address is written
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Active reports whether any client has failed lately (is tracked): when
// none has, no request needs its client's address looked up. It costs one
// atomic load. False for a nil Limiter.
func (l *Limiter) Active() bool { return l != nil && l.tracked.Load() > 0 }

// Wait returns how long the client at ip must wait before its failures are
// forgiven enough for it to no longer be limited: until one token has come
// back. It is 0 when the client is not limited, and at most one interval.
// Callers send it as Retry-After.
func (l *Limiter) Wait(ip string) time.Duration {
	if !l.Active() {
		return 0
	}
	key := ClientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[key]
	if c == nil {
		return 0
	}
	tokens := l.tokens(c, c.at(l.now()))
	if l.atLeast(tokens, 1) {
		return 0
	}
	// To the nearest nanosecond, which is exact (see slack).
	return time.Duration(math.Round((1 - tokens) * float64(l.interval)))
}

// Failed records that the client at ip presented n credentials that
// failed (n <= 0 records nothing). It returns true when these failures
// start a lockout (leave the client limited), which the caller logs: once
// per lockout, however many requests it refuses, until the client's
// bucket is full again. A client first seen while 100,000 are tracked is
// not recorded (false).
func (l *Limiter) Failed(ip string, n int) (lockout bool) {
	if l == nil || n <= 0 {
		return false
	}
	key := ClientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c := l.clients[key]
	if c == nil {
		l.sweep(now)
		if len(l.clients) >= maxClients {
			return false
		}
		c = &client{bucket: rate.NewLimiter(l.limit, l.burst)} // full
		l.clients[key] = c
		l.tracked.Store(int64(len(l.clients)))
	}
	now = c.clock(now)
	l.tokens(c, now) // a full bucket ends the last lockout
	if !c.bucket.AllowN(now, n) {
		// Fewer than n tokens left: take them all, and no more.
		c.bucket = l.emptyBucket(now)
	}
	if !l.atLeast(c.bucket.TokensAt(now), 1) && !c.announced {
		c.announced = true
		return true
	}
	return false
}

// clock returns now for c's bucket, never earlier than a time it handed
// the bucket before: rate refills again the span between a later and an
// earlier reading, so a clock stepped back (NTP, a clock without a
// monotonic reading) would forgive a locked-out client. It is per client,
// as the old bucket's own time was: a clock stepped forward and back
// holds only the clients that failed meanwhile. l.mu is held.
func (c *client) clock(now time.Time) time.Time {
	now = c.at(now)
	c.latest = now
	return now
}

// at is clock for a reading that changes nothing (Wait): a client that
// only asked during a wrong reading is not held to it.
func (c *client) at(now time.Time) time.Time {
	if now.Before(c.latest) {
		return c.latest
	}
	return now
}

// tokens returns how many tokens c's bucket holds at now; a full bucket
// ends a lockout. l.mu is held.
func (l *Limiter) tokens(c *client, now time.Time) float64 {
	tokens := c.bucket.TokensAt(now)
	if l.atLeast(tokens, l.burst) {
		c.announced = false
	}
	return tokens
}

// atLeast reports whether tokens, as counted by rate, are n or more.
func (l *Limiter) atLeast(tokens float64, n int) bool {
	return tokens >= float64(n)-l.slack
}

// emptyBucket returns a bucket that is empty at now: a new bucket is full,
// and taking its whole burst empties it.
func (l *Limiter) emptyBucket(now time.Time) *rate.Limiter {
	b := rate.NewLimiter(l.limit, l.burst)
	b.AllowN(now, l.burst)
	return b
}

// sweep forgets clients whose bucket is full again and who have no
// validation queued, at most once per interval (or at once when the table
// is full). l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	if now.Before(l.lastSweep) {
		l.lastSweep = now // a clock stepped back: sweeps resume from now
	}
	if now.Sub(l.lastSweep) < l.interval && len(l.clients) < maxClients {
		return
	}
	l.lastSweep = now
	for k, c := range l.clients {
		if l.atLeast(l.tokens(c, now), l.burst) && c.waiting == 0 {
			delete(l.clients, k)
		}
	}
	l.tracked.Store(int64(len(l.clients)))
}
