package middleware

import "context"

// Check reports whether the session store can do what sign-in and
// sign-out need: call it at start-up, and from a readiness probe. It runs
// the store's own checks (for Redis: a primary, not a Sentinel or a
// cluster node, maxmemory-policy noeviction, not full) and compares the
// fingerprint of Config.Secret (an HMAC that names it without revealing
// it) with the one the store keeps, recording it when the store has none.
// A memory store checks the fingerprint alone.
//
// It returns nil, or an error that says why in words safe to show (no
// secret, token, key or server text): store.ErrSecretMismatch when
// processes with another secret use the store (each would mint its own
// session for one frontend token, and a sign-out in one would not stop
// the other), or an error wrapping store.ErrUnavailable (and
// store.ErrMisconfigured when the store's setup is at fault). With no
// Config.Secret (a random one, for this process alone), the fingerprint
// is compared but never recorded. Check logs nothing; it is safe for
// concurrent use.
func (a *Auth) Check(ctx context.Context) error { return a.engine.Check(ctx) }
