package middleware

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxLimitedClients bounds the guess limiter's memory. Past it, clients
// not yet seen are not tracked until a sweep makes room (fail open: a flood
// of addresses cannot lock everyone out).
const maxLimitedClients = 100_000

// guessLimiter counts failed credentials per client address (IPv6 by its
// /64): a token bucket of burst tokens, each failure takes one, one comes
// back per interval. A client with no token left is limited, which costs
// it only what failing would cost us:
//
//   - a session token (cookie or header) is still looked up (one store
//     read, as for any request): a live one is served, a dead one gets 429
//     instead of 401;
//   - a frontend token still finds its existing session (one store read);
//     a new one waits for its turn to be validated upstream: one
//     validation at a time per limited client, in arrival order, for as
//     long as the request waits (its context) and at most the exchange
//     timeout. A flood of bad tokens from one address thus keeps at most
//     one upstream call busy, and a valid token from the same address (a
//     colleague behind the same NAT) is validated when its turn comes
//     instead of being refused.
//
// What is never limited: requests without credentials, and a credential
// that works. Safe for concurrent use; per process. When no client is
// limited, the cost per request is one atomic load.
type guessLimiter struct {
	burst     float64
	interval  time.Duration
	now       func() time.Time
	mu        sync.Mutex
	clients   map[string]*guessClient
	lastSweep time.Time
	// tracked is len(clients), read without the lock so that the usual
	// case (no client has failed lately) costs one atomic load.
	tracked atomic.Int64
}

// guessClient is one client's bucket and upstream queue. l.mu guards it.
type guessClient struct {
	tokens float64
	at     time.Time
	// announced is true once this lockout was logged: a lockout is logged
	// once, from the failure that starts it until the bucket is full again.
	announced bool
	// turn holds one value while a validation of this client's is
	// upstream; made when first needed.
	turn chan struct{}
	// waiting counts requests holding or waiting for turn: the entry is
	// not swept while any does.
	waiting int
}

func newGuessLimiter(burst int, interval time.Duration, now func() time.Time) *guessLimiter {
	if burst < 0 {
		return nil
	}
	return &guessLimiter{burst: float64(burst), interval: interval, now: now, clients: map[string]*guessClient{}, lastSweep: now()}
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

// refill brings c up to date at now; a full bucket ends a lockout.
func (l *guessLimiter) refill(c *guessClient, now time.Time) {
	if d := now.Sub(c.at); d > 0 {
		c.tokens = min(l.burst, c.tokens+float64(d)/float64(l.interval))
		c.at = now
	}
	if c.tokens >= l.burst {
		c.announced = false
	}
}

// any reports whether any client has failed lately: when none has, no
// request needs its client's address looked up.
func (l *guessLimiter) any() bool { return l != nil && l.tracked.Load() > 0 }

// wait returns how long client must wait before its failures are forgiven
// enough to no longer be limited; 0 when it is not limited.
func (l *guessLimiter) wait(client string) time.Duration {
	if !l.any() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[clientKey(client)]
	if c == nil {
		return 0
	}
	l.refill(c, l.now())
	if c.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - c.tokens) * float64(l.interval))
}

// failed records that client presented n credentials that failed. It
// returns true when these failures start a lockout, which the caller logs:
// once per lockout, however many requests it refuses.
func (l *guessLimiter) failed(client string, n int) (lockout bool) {
	if l == nil || n <= 0 {
		return false
	}
	now := l.now()
	key := clientKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[key]
	if c == nil {
		l.sweep(now)
		if len(l.clients) >= maxLimitedClients {
			return false
		}
		c = &guessClient{tokens: l.burst, at: now}
		l.clients[key] = c
		l.tracked.Store(int64(len(l.clients)))
	}
	l.refill(c, now)
	c.tokens = max(0, c.tokens-float64(n))
	if c.tokens < 1 && !c.announced {
		c.announced = true
		return true
	}
	return false
}

// sweep forgets clients whose bucket is full again and who have no
// validation queued, at most once per interval (or at once when the map is
// full). l.mu is held.
func (l *guessLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.interval && len(l.clients) < maxLimitedClients {
		return
	}
	l.lastSweep = now
	for k, c := range l.clients {
		if l.refill(c, now); c.tokens >= l.burst && c.waiting == 0 {
			delete(l.clients, k)
		}
	}
	l.tracked.Store(int64(len(l.clients)))
}

// errNoTurn is why a limited client's frontend token was not validated:
// its turn did not come within the exchange timeout. Answered 429.
var errNoTurn = errors.New("sessiongate/middleware: too many failed credentials from this client; its validations are queued")

// turnKey is the context key of a limited request's *turnTicket.
var turnKey = &struct{ name string }{"sessiongate upstream turn"}

// turnTicket marks a request from a limited client: its upstream
// validation waits for the client's turn.
type turnTicket struct {
	l   *guessLimiter
	key string
	// left is closed when the request that asked for the validation is
	// gone (its context's Done).
	left <-chan struct{}
}

// queued returns ctx marked so that an upstream validation made for it
// waits for client's turn (Auth.upstreamTurn).
func (l *guessLimiter) queued(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, turnKey, &turnTicket{l: l, key: clientKey(client), left: ctx.Done()})
}

// upstreamTurn is called by an exchange before it calls the provider, in
// the exchange's detached context. For a request from a limited client
// (see guessLimiter) it waits until no other validation of that client's
// is upstream, or until the request is gone or ctx ends (errNoTurn); the
// caller calls release when its upstream call is over. For any other
// request it returns at once.
func (a *Auth) upstreamTurn(ctx context.Context) (release func(), err error) {
	t, _ := ctx.Value(turnKey).(*turnTicket)
	if t == nil {
		return func() {}, nil
	}
	l := t.l
	l.mu.Lock()
	c := l.clients[t.key]
	if c == nil {
		// Forgiven (or never tracked: the limiter is full) meanwhile.
		l.mu.Unlock()
		return func() {}, nil
	}
	if c.turn == nil {
		c.turn = make(chan struct{}, 1)
	}
	c.waiting++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		c.waiting--
		l.mu.Unlock()
	}
	select {
	case c.turn <- struct{}{}:
		return func() { <-c.turn; done() }, nil
	case <-t.left:
	case <-ctx.Done():
	}
	done()
	return nil, errNoTurn
}
