// Package store persists sessiongate's sessions for scs, in memory or in
// Redis.
//
// A Store is an scs.Store, so a *scs.SessionManager loads and commits
// sessions through it as usual, plus what scs has no words for:
//
//   - Lookup reads a session by key alone, for a caller that derives the
//     key from the frontend token the session was minted from.
//   - Mint creates a session together with its entry in the user's index,
//     in one round trip, only if the key still holds what the caller saw:
//     processes that share a store never mint twice for one key.
//   - End ends sessions: each key keeps the mark of an ended session until
//     a time the caller gives (its frontend token's expiry), so a
//     signed-out token cannot mint again, and leaves its user's index.
//   - Sessions lists one user's live sessions from the index, never by
//     scanning the store.
//
// Session tokens are split tokens (Token): a selector that names the
// session and a validator that opens it. The store keeps the selector as
// the key and 16 bytes of the validator's SHA-256 hash: a dump of the store
// cannot be replayed as cookies, and a guessed selector opens nothing.
//
// Commit, the method scs calls to save a session, only updates a live
// session that the token still opens: sessions are created by Mint alone,
// so a request that was in flight while its session was signed out (or
// minted anew) cannot write it back.
//
// Codec is the compact scs.Codec that NewManager installs.
//
//	sm := store.NewManager(store.NewMemory())
//	// or
//	pool, err := store.NewRedisPool("redis://127.0.0.1:6379/0")
//	sm := store.NewManager(store.NewRedis(pool))
package store
