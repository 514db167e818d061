// Package store persists sessiongate's sessions for scs, in memory or in
// Redis.
//
// A Store is an scs.Store, so a *scs.SessionManager loads and commits
// sessions through it as usual, plus what scs has no words for:
//
//   - Lookup reads a session by key alone, for a caller that derives the
//     key from the frontend token the session was minted from.
//   - Mint creates a session together with its entry in the user's index,
//     in one round trip, only if the key still holds what the caller saw
//     (processes that share a store never mint twice for one key) and its
//     credential was not signed out; it replaces the user's other live
//     session of the same credential.
//   - End ends sessions: each key (and its credential's mark) keeps the
//     mark of an ended session until a time the caller gives (its frontend
//     token's expiry), so a signed-out token cannot mint again, and leaves
//     its user's index. A replaced session leaves no mark.
//   - Touch replaces a session's record (sessiongate's own description of
//     it), which is kept beside the scs values, never among them.
//   - Sessions lists one user's live sessions from the index, never by
//     scanning the store.
//
// Session tokens are split tokens (Token): a selector that names the
// session and a validator that opens it. The store keeps the selector as
// the key and 16 bytes of the validator's SHA-256 hash: a dump of the store
// cannot be replayed as cookies, and a guessed selector opens nothing.
//
// Commit, the method scs calls to save a session's values, only updates a
// live session that the token still opens (ErrNotLive otherwise): sessions
// are created by Mint alone, so a request that was in flight while its
// session was signed out (or minted anew) cannot write it back. Delete and
// scs's iteration return ErrUnsupported: scs's Destroy and RenewToken
// would end a session without its sign-out mark.
//
// Codec is the compact scs.Codec that NewManager installs.
//
//	sm := store.NewManager(store.NewMemory())
//	// or
//	pool, err := store.NewRedisPool("redis://127.0.0.1:6379/0")
//	sm := store.NewManager(store.NewRedis(pool))
package store
