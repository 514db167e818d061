package middleware

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxLimitedClients bounds the guess limiter's memory. Past it, clients
// not yet seen are not tracked until a sweep makes room (fail open: a flood
// of addresses cannot lock everyone out).
const maxLimitedClients = 100_000

// guessLimiter is a token bucket per client for failed credentials: each
// failure takes a token, one comes back per interval, up to burst. A
// client with no token left is refused before its credentials are looked
// at. Safe for concurrent use; per process.
type guessLimiter struct {
	burst     float64
	interval  time.Duration
	now       func() time.Time
	mu        sync.Mutex
	clients   map[string]*bucket
	lastSweep time.Time
	// tracked is len(clients), read without the lock so that the usual
	// case (no client has failed lately) costs one atomic load.
	tracked atomic.Int64
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newGuessLimiter(burst int, interval time.Duration, now func() time.Time) *guessLimiter {
	if burst < 0 {
		return nil
	}
	return &guessLimiter{burst: float64(burst), interval: interval, now: now, clients: map[string]*bucket{}, lastSweep: now()}
}

// clientKey is who is limited: the client's IP, an IPv6 address by its /64
// (one subscriber's usual allocation), anything unparsable as is.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// refill brings b up to date at now.
func (l *guessLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.interval))
		b.at = now
	}
}

// any reports whether any client has failed lately: when none has, no
// request needs its client's address looked up.
func (l *guessLimiter) any() bool { return l != nil && l.tracked.Load() > 0 }

// wait returns how long client must wait before it may present
// credentials again; 0 when it may now.
func (l *guessLimiter) wait(client string) time.Duration {
	if !l.any() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[clientKey(client)]
	if b == nil {
		return 0
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.interval))
}

// failed records that client presented credentials that failed.
func (l *guessLimiter) failed(client string) {
	if l == nil {
		return
	}
	now := l.now()
	key := clientKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		l.sweep(now)
		if len(l.clients) >= maxLimitedClients {
			return
		}
		b = &bucket{tokens: l.burst, at: now}
		l.clients[key] = b
		l.tracked.Store(int64(len(l.clients)))
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

// sweep forgets clients whose bucket is full again, at most once per
// interval (or at once when the map is full). l.mu is held.
func (l *guessLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.interval && len(l.clients) < maxLimitedClients {
		return
	}
	l.lastSweep = now
	for k, b := range l.clients {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.clients, k)
		}
	}
	l.tracked.Store(int64(len(l.clients)))
}
