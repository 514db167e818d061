package guesslimit

import (
	"context"
	"errors"
)

// ErrNoTurn is why a limited client's credential was not validated: its
// turn did not come before the request left or the context given to Turn
// ended. The middleware answers it 429, not as a provider failure.
var ErrNoTurn = errors.New("sessiongate/guesslimit: too many failed credentials from this client; its validations are queued")

// turnKey is the context key of a queued request's *ticket.
var turnKey = &struct{ name string }{"sessiongate upstream turn"}

// ticket marks a request from a limited client: its upstream validation
// waits for the client's turn.
type ticket struct {
	l   *Limiter
	key string
	// left is closed when the request that asked for the validation is
	// gone (its context's Done).
	left <-chan struct{}
}

// Queued returns ctx marked so that an upstream validation made for it
// waits for the turn of the client at ip (see Turn). The mark survives
// context.WithoutCancel, and the wait still ends when ctx itself is done:
// a validation detached from its request gives up its place when the
// request leaves. Callers queue only a limited client's requests
// (Wait(ip) > 0). On a nil Limiter it returns ctx.
func (l *Limiter) Queued(ctx context.Context, ip string) context.Context {
	if l == nil {
		return ctx
	}
	return context.WithValue(ctx, turnKey, &ticket{l: l, key: ClientKey(ip), left: ctx.Done()})
}

// Turn is called before an upstream call (a validation) made for ctx. For
// a context marked by Queued whose client is still tracked, it waits until
// no other of that client's validations holds the turn, first come first
// served, and takes it; it gives up with ErrNoTurn when the queued request
// leaves or ctx ends, so bound ctx (the middleware gives it
// ExchangeTimeout). For any other context it returns at once. On success
// the caller calls release exactly once, when its upstream call is over.
// Safe for concurrent use.
func Turn(ctx context.Context) (release func(), err error) {
	t, _ := ctx.Value(turnKey).(*ticket)
	if t == nil {
		return func() {}, nil
	}
	l := t.l
	l.mu.Lock()
	c := l.clients[t.key]
	if c == nil {
		// Forgiven (or never tracked: the table is full) meanwhile.
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
	return nil, ErrNoTurn
}
