package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Store is session persistence for sessiongate. Implementations are safe
// for concurrent use. Not found is never an error: errors are for a store
// that cannot answer, and every such error wraps ErrUnavailable.
type Store interface {
	// Find, Commit and Delete make the Store an scs.Store. Commit updates
	// a session that exists and does nothing for one that does not.
	scs.Store

	// Mint creates the session m.Key with its index entry and link in one
	// round trip. A session whose Expires has passed is not written.
	Mint(ctx context.Context, m Mint) error

	// Link returns the value of the link at key.
	Link(ctx context.Context, key string) (value []byte, found bool, err error)

	// End deletes each session, drops it from its user's index and
	// replaces its link (when LinkKey is set) with Tombstone until
	// TombstoneExpires, in one round trip.
	End(ctx context.Context, ends ...End) error

	// Sessions returns the keys and data of user's live sessions, found
	// through the user's index: O(that user's sessions), whatever the size
	// of the store. Entries whose session is gone are dropped from the
	// index.
	Sessions(ctx context.Context, user string) ([]Entry, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Mint is a session to create.
type Mint struct {
	// Key is the session's store key: Key(token).
	Key string
	// Data is the encoded session.
	Data []byte
	// Expires is when the session and its index entry expire.
	Expires time.Time
	// User is the key of the user's index, such as "plurality:1234".
	User string
	// LinkKey, when set, stores Link under it until Expires.
	LinkKey string
	// Link is the link's value.
	Link []byte
}

// End is a session to end.
type End struct {
	// Key is the session's store key.
	Key string
	// User is the key of the user's index that holds the session.
	User string
	// LinkKey, when set, is overwritten with Tombstone.
	LinkKey string
	// Tombstone is the value left on the link.
	Tombstone []byte
	// TombstoneExpires is when the tombstone goes; when it is not after
	// now, the link is deleted instead.
	TombstoneExpires time.Time
}

// Entry is one session found through a user's index.
type Entry struct {
	// Key is the session's store key.
	Key string
	// Data is the encoded session.
	Data []byte
}

// ErrUnavailable is wrapped by every error a Store returns: the store could
// not be reached or did not answer in time. It is never returned for data
// that is merely absent.
var ErrUnavailable = errors.New("store: unavailable")

// Key returns the store key of a session token: the base64url SHA-256 hash
// that scs uses when HashTokenInStore is set. The token cannot be recovered
// from it.
func Key(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewManager returns an scs session manager that keeps its sessions in st,
// ready for sessiongate: tokens hashed in the store, no scs idle timeout
// (sessiongate's middleware enforces its own, without a write per request),
// and a Secure, HttpOnly, SameSite=Lax cookie named "session" on path "/".
// Change Lifetime or Cookie fields as with any scs manager.
func NewManager(st Store) *scs.SessionManager {
	sm := scs.New()
	sm.Store = st
	sm.HashTokenInStore = true
	sm.IdleTimeout = 0
	sm.Cookie.Name = "session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.Secure = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	return sm
}
