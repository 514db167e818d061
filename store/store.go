package store

import (
	"github.com/sessiongate/sessiongate/internal/backend"
)

// Store keeps sessiongate's sessions: NewMemory's, in this process, or
// redisstore.New's, in Redis. Give it to middleware.Config.Store (whose
// default is a new memory store, for a single process).
//
// Its methods are sessiongate's own: their types live in an internal
// package, so a Store cannot be implemented outside this module (and so
// cannot be implemented wrongly). A type that embeds a Store is a Store
// too, and may override the scs methods, whose types are public: the
// handlers' values are committed through its Commit (CommitCtx when it has
// one, with the request's context values) and Delete; sessions are read
// with the store's own methods, one read per request, which scs's Find
// is not called for; and the store's clock passes through it, so that a
// wrapped memory store judges expiry at the same clock as the bare one
// (middleware.Config.Now). Every Store is safe for concurrent use. Not
// found is never an error: errors are for a store that cannot answer, and
// every such error wraps ErrUnavailable.
type Store interface {
	backend.Backend
}

// The errors a Store's users may meet, for errors.Is.
var (
	// ErrUnavailable is wrapped by every error a Store returns: it could
	// not be reached or did not answer in time. It is never returned for
	// data that is merely absent. The middleware answers it with 503
	// session_store_unavailable.
	ErrUnavailable = backend.ErrUnavailable

	// ErrNotLive is returned by scs's Commit (and so by its
	// LoadAndSave and Commit) when the session token opens no live
	// session: it ended (signed out, expired) or never existed.
	// sessiongate creates sessions only by minting, so scs values written
	// for a request without a session (or after scs's RenewToken) cannot
	// be kept.
	ErrNotLive = backend.ErrNotLive

	// ErrUnsupported is returned for the scs calls sessiongate does not
	// support: Destroy and RenewToken (end sessions with the middleware's
	// SignOut instead) and Iterate (list a user's sessions with its
	// Sessions).
	ErrUnsupported = backend.ErrUnsupported

	// ErrMisconfigured is wrapped, with ErrUnavailable, by the errors of a
	// store whose server cannot keep sessiongate's promises: for Redis, a
	// Sentinel or a cluster node instead of a Redis server, a read-only
	// replica, or a maxmemory-policy that may evict keys. The error's text
	// says which and what to change.
	ErrMisconfigured = backend.ErrMisconfigured

	// ErrSecretMismatch is returned by the middleware's Check when the
	// store already holds the fingerprint of another secret: processes
	// with different secrets share it, so each would mint its own session
	// for one frontend token, and a sign-out in one would not stop the
	// other.
	ErrSecretMismatch = backend.ErrSecretMismatch
)
