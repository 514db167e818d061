// Package store persists sessiongate's sessions for scs, in memory or in
// Redis.
//
// A Store is an scs.Store, so a *scs.SessionManager loads and commits
// sessions through it as usual, plus what scs has no words for:
//
//   - Mint creates a session together with its entry in the user's index and
//     its link (the keyed hash of the frontend token it was minted from), in
//     one round trip.
//   - Link finds the session minted from a frontend token.
//   - End deletes sessions, removes them from their user's index and leaves
//     a tombstone on their links, so a signed-out token cannot mint again.
//   - Sessions lists one user's live sessions from the index, never by
//     scanning the store.
//
// Keys are never raw tokens: sessions are stored under Key(token), the same
// SHA-256 hash scs uses with HashTokenInStore, and links under a keyed hash
// the caller computes. A dump of the store cannot be replayed as cookies.
//
// Commit, the method scs calls to save a session, only updates a session
// that still exists: sessions are created by Mint alone, so a request that
// was in flight while its session was signed out cannot write it back.
//
//	sm := store.NewManager(store.NewMemory())
//	// or
//	pool, err := store.NewRedisPool("redis://127.0.0.1:6379/0")
//	sm := store.NewManager(store.NewRedis(pool))
package store
