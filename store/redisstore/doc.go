// Package redisstore keeps sessiongate's sessions in Redis, for processes
// that share them: Open returns a store.Store for a URL naming a single
// Redis, a Sentinel set (?master_name=) or a Redis Cluster
// (?cluster=true), over TLS with rediss://; New returns one on a redigo
// pool of yours, NewPool makes that pool from a single Redis's URL, and
// Options tunes them (its zero value is the default).
//
//	pool, err := redisstore.NewPool("redis://127.0.0.1:6379/0")
//	if err != nil {
//		log.Fatal(err) // what is wrong with the URL; never the URL
//	}
//	st := redisstore.New(pool, redisstore.Options{})
//	// middleware.Config{Store: st, ...}; then auth.Check(ctx) at start
//
// The Redis must be 7.0 or later, a primary, with maxmemory-policy
// noeviction: an evicting Redis would forget the marks that keep
// signed-out tokens from signing in again. On a Sentinel, a cluster node
// or an evicting Redis, every operation fails with store.ErrMisconfigured,
// saying why (unless Options.InsecureAllowEviction allows eviction); on a
// replica, writes fail (READONLY); the middleware's Check tells each of
// these at start-up. Errors wrap store.ErrUnavailable and say a short
// reason of the store's own ("timeout", "connection refused", "READONLY:
// ..."), never a server's reply, a key or the URL. The store recovers
// from a Redis restart by itself, at the first request after it.
//
// Keys (the store key is 22 characters of the session token; no key or
// value holds a token):
//
//	sg:s:<key>      a session (framed with a hash of its token's validator), or the mark of an ended one, with its expiry
//	sg:u:<user>     sorted set of the user's session keys scored by expiry (ms): one user's sessions, without a scan
//	sg:fingerprint  the fingerprint of the secret of the processes that share the store (no expiry)
//	sg:health       written, with a 60 s expiry, by the start-up check (and on Sentinel by a write that runs again)
//
// Options.NearCache (single Redis and Sentinel) adds a cache of sessions
// in the process's memory, kept fresh by Redis's announcements of changes
// (CLIENT TRACKING) and served only within a bounded time of the last
// answer on that link: see NearCache.
//
// A session with a typical identity takes under 400 bytes of Redis memory,
// index included. Nothing scans the keyspace: no KEYS, no SCAN.
package redisstore
