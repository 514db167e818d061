// Package store is where sessiongate keeps its sessions: a Store, which
// the middleware takes in its Config and uses for everything a session
// needs (scs's loads and commits, minting a session from a frontend
// token, signing out, listing a user's sessions, the start-up check).
//
// NewMemory keeps sessions in this process: for one process, tests and
// demos. Package store/redisstore keeps them in Redis, for processes that
// share sessions; it is a package of its own so that a program that uses
// the memory store does not link a Redis client.
//
//	st := store.NewMemory()
//	// or: pool, err := redisstore.NewPool(url); st := redisstore.New(pool, redisstore.Options{})
//	// then: middleware.Config{Store: st, ...}
//
// Every Store keeps the same promises, which both stores are tested
// against: not found is never an error; every error of a store that
// cannot answer wraps ErrUnavailable (the middleware answers 503); a
// session is created only by a sign-in, never by scs's Commit (which
// returns ErrNotLive for a session that ended meanwhile), so a request in
// flight during a sign-out cannot bring the session back; scs's Destroy,
// RenewToken and Iterate return ErrUnsupported; a store keeps a hash of
// each session token's secret half, never the token.
//
// Store is sealed: its methods take types of an internal package, so only
// this module's stores implement it. The promises above are kept by
// scripts and locks that a store written elsewhere could easily get
// subtly wrong (a sign-out that a concurrent sign-in undoes), and sealing
// leaves the methods free to change as the middleware needs. A type that
// embeds a Store is a Store too, and may override scs's methods (see
// Store).
package store
