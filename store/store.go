package store

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Store is session persistence for sessiongate. Implementations are safe
// for concurrent use. Not found is never an error: errors are for a store
// that cannot answer, and every such error wraps ErrUnavailable.
//
// Its scs methods take session tokens, which the store splits itself (see
// Token): scs's HashTokenInStore must be off, as NewManager leaves it.
type Store interface {
	// Find, Commit and Delete make the Store an scs.Store. Find answers
	// only for the token's validator, with the session's scs values.
	// Commit replaces the scs values of a live session that the token
	// still opens and returns ErrNotLive otherwise; it never creates a
	// session. Delete returns ErrUnsupported: scs's Destroy and RenewToken
	// would end a session without sessiongate's sign-out mark.
	scs.Store
	// FindCtx is Find with a context; a context from Prefetched answers
	// without reading the store again.
	FindCtx(ctx context.Context, token string) ([]byte, bool, error)

	// Lookup returns what is stored at key, whatever its validator: a live
	// session, the mark of an ended one, or nothing.
	Lookup(ctx context.Context, key string) (Stored, error)

	// Mint stores a session under its token's key, with its entry in the
	// user's index, in one round trip, if the key still holds exactly what
	// m.Replace was read from (nothing, for a zero Replace); otherwise it
	// writes nothing and returns ErrConflict. If m.Mark holds the mark of
	// an ended session it writes nothing and returns ErrSignedOut. A
	// session whose Expires has passed is not written.
	Mint(ctx context.Context, m Mint) error

	// Touch replaces the record of the live session that token opens,
	// keeping its scs values and expiry; it does nothing when there is
	// none.
	Touch(ctx context.Context, token string, record []byte) error

	// End ends each session: its key (and its Mark) keep the mark of an
	// ended session until Until (deleted when Until is not after now), or
	// it is removed when Replaced; and it leaves its user's index, in one
	// round trip.
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
	// Token is the session's token. The store keeps its Key and a hash of
	// its validator.
	Token string
	// Nonce is kept with the session and returned by Lookup (NonceLen
	// bytes; shorter is padded with zeros).
	Nonce []byte
	// Credential names the credential the session was minted from (zero:
	// none), for "one session per credential": a mint ends, as replaced,
	// any other live session in User's index minted from the same
	// Credential.
	Credential [CredentialLen]byte
	// Mark, when set, is the key of the credential's sign-out mark (an End
	// with Mark set leaves it): if it holds the mark of an ended session,
	// Mint writes nothing and returns ErrSignedOut.
	Mark string
	// Record is sessiongate's record of the session, at most MaxRecordLen
	// bytes.
	Record []byte
	// Data is the session's scs values, encoded by the manager's Codec.
	Data []byte
	// Expires is when the session and its index entry expire.
	Expires time.Time
	// User is the key of the user's index, such as "plurality:1234".
	User string
	// Replace is what Lookup found at the key before: the mint happens only
	// if it is still there.
	Replace Stored
	// Continues, when set, is a session of the same User that the new one
	// continues (the same device signing in again): in the same atomic
	// step, it is removed, key and index entry. If it is no longer that
	// live session (signed out, continued by another mint meanwhile), Mint
	// writes nothing and returns ErrNotContinued.
	Continues *Continue
}

// End is a session to end.
type End struct {
	// Key is the session's store key.
	Key string
	// User is the key of the user's index that holds the session.
	User string
	// Until is how long the key (and Mark) keep the mark of an ended
	// session, which Lookup reports as Ended: until the frontend token it
	// was minted from expires.
	Until time.Time
	// Mark, when set, is the key of the session's credential mark, which
	// is marked ended too (see Mint.Mark).
	Mark string
	// Replaced ends the session without a sign-out mark, and only if the
	// key still holds the live session minted with Nonce (a concurrent
	// sign-out's mark, or a session minted anew, is left alone): the key
	// is removed and the index entry goes. The frontend token it was
	// minted from may mint again. For a session replaced by another user's
	// sign-in on the same device, not for a sign-out.
	Replaced bool
	// Nonce is the nonce of the session a Replaced end ends.
	Nonce []byte
}

// Continue is the session a mint continues (Mint.Continues).
type Continue struct {
	// Key is its store key, and Nonce the nonce it was minted with: the
	// mint happens only if Key still holds that live session.
	Key   string
	Nonce []byte
}

// Entry is one session found through a user's index.
type Entry struct {
	// Key is the session's store key.
	Key string
	// Record is sessiongate's record of the session.
	Record []byte
	// Data is the session's scs values.
	Data []byte
	// Nonce is the nonce the session was minted with.
	Nonce []byte
	// Credential is the credential id the session was minted with.
	Credential [CredentialLen]byte
}

// ErrConflict is returned by Mint when the key no longer holds what the
// caller saw: another process minted or ended the session meanwhile.
var ErrConflict = errors.New("store: the session changed meanwhile")

// errBadMint is returned by Mint for a Mint without a session token or a
// user: a caller's mistake, not a client's.
var errBadMint = errors.New("store: Mint needs a session Token, a User and a Record of at most MaxRecordLen bytes")

// ErrNotContinued is returned by Mint when Mint.Continues is no longer
// the live session it names.
var ErrNotContinued = errors.New("store: the session to continue ended meanwhile")

// ErrSignedOut is returned by Mint when Mint.Mark holds the mark of an
// ended session: the credential was signed out.
var ErrSignedOut = errors.New("store: the credential was signed out")

// ErrNotLive is returned by Commit when the token opens no live session:
// it ended (signed out, expired) or never existed. sessiongate creates
// sessions only by minting, so scs values written for a request without a
// session (or after scs's RenewToken) cannot be kept.
var ErrNotLive = errors.New("store: no live session for this token")

// ErrUnsupported is returned for the scs calls sessiongate does not
// support: Destroy and RenewToken (which call Delete; end sessions with
// the middleware's SignOut instead) and Iterate (list a user's sessions
// with the middleware's Sessions instead).
var ErrUnsupported = errors.New("store: not supported by sessiongate: end sessions with middleware.Auth.SignOut, list them with Auth.Sessions")

// ErrUnavailable is wrapped by every error a Store returns: the store could
// not be reached or did not answer in time. It is never returned for data
// that is merely absent.
var ErrUnavailable = errors.New("store: unavailable")

// DefaultCookieName is the session cookie's name in a manager made by
// NewManager. The __Host- prefix makes browsers accept the cookie only
// when it is Secure, has Path / and no Domain, so a sibling subdomain or a
// plain-http page cannot set or shadow it. sessiongate's middleware keeps
// the prefix only where a browser would accept it: it names the cookie
// "__Secure-session" when Domain is set or Path is not "/", and "session"
// under Config.InsecureCookie (plain http in development).
const DefaultCookieName = "__Host-session"

// NewManager returns an scs session manager that keeps its sessions in st,
// ready for sessiongate: the compact Codec, tokens split by the store
// (HashTokenInStore off: the store never keeps a token), no scs idle
// timeout (sessiongate's middleware enforces its own, without a write per
// request), and a Secure, HttpOnly, SameSite=Lax cookie named
// DefaultCookieName ("__Host-session") on path "/". Change Lifetime or
// Cookie fields as with any scs manager.
func NewManager(st Store) *scs.SessionManager {
	sm := scs.New()
	sm.Store = st
	sm.Codec = Codec{}
	sm.HashTokenInStore = false
	sm.IdleTimeout = 0
	sm.Cookie.Name = DefaultCookieName
	sm.Cookie.HttpOnly = true
	sm.Cookie.Secure = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	return sm
}
