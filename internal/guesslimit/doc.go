// Package guesslimit limits guessing: it counts the credentials that fail
// per client address and, once a client has failed too often, says so,
// and queues that client's upstream validations one at a time.
//
// A [Limiter] keeps one token bucket per client (see [ClientKey]): each
// failed credential takes a token, one comes back per interval, and a
// client with no token left is limited. The buckets are
// golang.org/x/time/rate limiters driven only by the clock handed to
// [New], never the wall clock. What a limited client is refused is the
// caller's choice; the middleware refuses only what failing would cost
// it, and sends a limited client's new frontend tokens upstream in turn:
//
//	if lim.Wait(ip) > 0 {
//		ctx = lim.Queued(ctx, ip) // upstream validations wait for the client's turn
//	}
//	...
//	release, err := guesslimit.Turn(ctx) // at once unless ctx was queued
//	if err != nil {
//		return err // ErrNoTurn: answer 429
//	}
//	defer release()
//	id, err := provider.Validate(ctx, token)
//	if errors.Is(err, provider.ErrInvalidToken) && lim.Failed(ip, 1) {
//		log.Warn("client rate limited", "client", guesslimit.ClientKey(ip)) // once per lockout
//	}
//
// Counts are per process and in memory; the table of clients is bounded
// and fails open past its bound (see [Limiter]). The package knows nothing
// of HTTP: a client is the address string the caller trusts.
package guesslimit
