// Package backend is the contract between sessiongate's session engine and
// its stores: the memory store (package store) and the Redis store
// (store/redisstore). Its types are internal, so no store outside this
// module can implement it, or implement it wrongly; applications choose a
// store with those packages' constructors and never call it themselves.
//
// Not found is never an error: errors are for a store that cannot answer,
// and every such error wraps ErrUnavailable.
package backend

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessiongate/sessiongate/internal/format"
)

// Clock is a clock a store can be given, and gives back (see Clocked).
// Its type is this module's own, and the methods that pass it are
// unexported, so that no code outside the module can hand a store a clock
// or read a store's (a clock that read the store's own would call itself),
// and no method of an application's wrapper can clash with them.
type Clock struct {
	Now func() time.Time
	// Wall is true when Now is time.Now.
	Wall bool
}

// WallClock returns now as a Clock, Wall set when now is time.Now itself
// (a function's code address: unique for a top-level function, and never
// a closure's or a method value's).
func WallClock(now func() time.Time) Clock {
	return Clock{Now: now, Wall: reflect.ValueOf(now).Pointer() == reflect.ValueOf(time.Now).Pointer()}
}

// Clocked is how a store shares its clock. Every Backend is one, and its
// methods are sealed: only this package's SharedClock and ServerClock
// have them, and the stores embed one, so that a store wrapped in an
// application's own type (embedding store.Store) passes its clock on. A
// store that expires its entries by a clock it can be given (the memory
// store, SharedClock) makes every decision of its own (reads, mints,
// ends, writes, listings, sweeps) and of the engines and middlewares on
// it at one clock: the first one built on it gives it its clock
// (UseClock reports whether it took it: the first clock given stays),
// and every one reads the store's (ClockOf). A store judged by its
// server's clock (Redis) takes none (ServerClock).
type Clocked interface {
	useClock(c Clock) bool
	clock() (Clock, bool)
}

// UseClock offers st the clock c and reports whether st follows it now:
// true for the first clock offered to a store that can be given one,
// false afterwards and for a store that cannot. It panics, saying so,
// when st is an application's wrapper around a nil store.
func UseClock(st Clocked, c Clock) bool {
	defer nilStore()
	return st.useClock(c)
}

// ClockOf returns st's clock, and false when st has none of its own
// (ServerClock): engines then read their own. It panics, saying so, when
// st is an application's wrapper around a nil store.
func ClockOf(st Clocked) (Clock, bool) {
	defer nilStore()
	return st.clock()
}

// nilStore turns the nil dereference of a wrapper around a nil store
// (type W struct{ store.Store }, its Store unset) into a panic that says
// so; any other panic goes on.
func nilStore() {
	if r := recover(); r != nil {
		if _, ok := r.(runtime.Error); ok {
			panic("sessiongate: Config.Store wraps a nil store")
		}
		panic(r)
	}
}

// SharedClock is the Clocked of a store that judges its entries by a
// clock it is given (the memory store embeds it): time.Now until the
// first clock given, which stays.
type SharedClock struct {
	c atomic.Pointer[Clock]
}

func (s *SharedClock) useClock(c Clock) bool {
	return c.Now != nil && s.c.CompareAndSwap(nil, &c)
}

func (s *SharedClock) clock() (Clock, bool) {
	if c := s.c.Load(); c != nil {
		return *c, true
	}
	return Clock{Now: time.Now, Wall: true}, true
}

// NowOf reads s's clock. A function, not a method: a method would be
// promoted to the store, where code outside the module could reach it.
func NowOf(s *SharedClock) time.Time {
	if c := s.c.Load(); c != nil {
		return c.Now()
	}
	return time.Now()
}

// ServerClock is the Clocked of a store whose server judges expiry by
// its own (wall) clock: it takes no clock and has none to give.
type ServerClock struct{}

func (ServerClock) useClock(Clock) bool { return false }

func (ServerClock) clock() (Clock, bool) { return Clock{}, false }

// LookupAt is Lookup judged at now, a reading of the clock the caller
// shares with the store (see Clocked), which it reads anyway: so that a
// steady request reads the clock once.
type LookupAt interface {
	LookupAt(ctx context.Context, key string, now time.Time) (format.Stored, error)
}

// Backend is a session store. Implementations are safe for concurrent use.
//
// Its scs methods take session tokens (format.Token), which the store
// splits itself: the scs manager's HashTokenInStore is off.
type Backend interface {
	// Clocked shares the store's clock, if it has one (see Clocked).
	Clocked

	// Find, Commit and Delete make a Backend an scs.Store. Find answers
	// only for the token's validator, with the session's scs values.
	// Commit replaces the scs values of a live session that the token
	// still opens and returns ErrNotLive otherwise; it never creates a
	// session. Delete returns ErrUnsupported: scs's Destroy and RenewToken
	// would end a session without sessiongate's sign-out mark.
	// (The engine answers scs's loads from its own Lookup, so Find serves
	// only callers of the store itself.)
	scs.Store

	// Lookup returns what is stored at key, whatever its validator: a live
	// session, the mark of an ended one, or nothing.
	Lookup(ctx context.Context, key string) (format.Stored, error)

	// Mint stores a session under its token's key, with its entry in the
	// user's index, if the key still holds exactly what s.Replace was read
	// from (nothing, for a zero Replace); otherwise it writes nothing and
	// returns ErrConflict. If s.Mark holds the mark of an ended session it
	// writes nothing and returns ErrSignedOut. A session whose Expires has
	// passed is not written: ErrExpired. With s.Limit, it ends in the same atomic step
	// the user's least recently used sessions beyond the limit (see
	// Limit).
	Mint(ctx context.Context, s NewSession) error

	// Touch replaces the record of the live session that token opens,
	// keeping its scs values and expiry; it does nothing when there is
	// none.
	Touch(ctx context.Context, token string, record []byte) error

	// End ends each session: its key (and its Mark) keep the mark of an
	// ended session until Until (deleted when Until is not after now), or
	// it is removed when Replaced; and it leaves its user's index.
	End(ctx context.Context, ends ...Ending) error

	// List returns one page of user's index: the live sessions among the
	// first limit entries (at least 1) after position after (zero: from
	// the start), in the index's order (see Position), and next, the
	// position of the last entry it read when more entries follow (zero
	// when none do). A page costs O(limit + log(the user's sessions)),
	// however many entries share after's expiry (a store may pay
	// O(log² n) to place a position whose entry has left the index), never
	// a read of the whole index nor of every entry of one expiry. Entries whose session is gone count toward limit (a
	// page may hold fewer than limit sessions, even none, with a next) and
	// are dropped from the index. A position's place does not depend on
	// what else the index holds: a walk of every page from the zero
	// position, with each next, lists each entry that stays in the index
	// throughout exactly once, whatever is added or removed meanwhile.
	List(ctx context.Context, user string, after Position, limit int) (entries []Entry, next Position, err error)

	// Check reports whether the store can do what sign-in and sign-out
	// need, and compares fingerprint (format.Secret.Fingerprint) with the
	// one the store keeps, recording it when the store has none and claim
	// is true. It returns ErrSecretMismatch, or an error wrapping
	// ErrUnavailable (and ErrMisconfigured when the store's setup is at
	// fault), in words safe to show.
	Check(ctx context.Context, fingerprint []byte, claim bool) error
}

// NewSession is a session to create (Backend.Mint).
type NewSession struct {
	// Token is the session's token. The store keeps its key and a hash of
	// its validator.
	Token string
	// Nonce is kept with the session and returned by Lookup
	// (format.NonceLen bytes; shorter is padded with zeros).
	Nonce []byte
	// Credential names the credential the session was minted from (zero:
	// none), for "one session per credential": a mint ends, as replaced,
	// any other live session in User's index minted from the same
	// Credential.
	Credential format.Credential
	// Mark, when set, is the key of the credential's sign-out mark (an
	// Ending with Mark set leaves it): if it holds the mark of an ended
	// session, Mint writes nothing and returns ErrSignedOut.
	Mark string
	// Record is sessiongate's record of the session, at most
	// format.MaxRecordLen bytes.
	Record []byte
	// Data is the session's scs values, encoded by format.Codec.
	Data []byte
	// Expires is when the session and its index entry expire.
	Expires time.Time
	// User is the key of the user's index (format.UserIndex).
	User string
	// Replace is what Lookup found at the key before: the mint happens
	// only if it is still there.
	Replace format.Stored
	// Continues, when set, is a session of the same User that the new one
	// continues (the same device signing in again): in the same atomic
	// step, it is removed, key and index entry. If it is no longer that
	// live session (signed out, continued by another mint meanwhile), Mint
	// writes nothing and returns ErrNotContinued.
	Continues *Continued
	// Limit, when set with a positive Max, caps User's live sessions: see
	// Limit. Mint reports in it the sessions it ended.
	Limit *Limit
}

// Limit caps the live sessions of a user (NewSession.Limit). In the same
// atomic step as the mint, after the sessions the mint replaces or
// continues have left, the store ends the user's other live sessions
// that are least recently used (the record's last seen time, read by
// format.RecordLastSeen; an unreadable record counts as never seen; ties
// by key) until, with the new one, at most Max are live. Each ended
// session's key keeps the mark of an ended session until the session
// would have expired, and leaves the index; the caller writes its other
// marks (an End of it: its credential's, its predecessors') afterwards.
// A mint that fails ends nothing.
type Limit struct {
	// Max is the most live sessions the user may have, the new one
	// included; 0 or less: no limit.
	Max int
	// Ended is set by a Mint that returns nil: the sessions it ended for
	// the limit, each as its key held it before (a live session), least
	// recently used first.
	Ended []Entry
}

// Continued is the session a mint continues (NewSession.Continues).
type Continued struct {
	// Key is its store key, and Nonce the nonce it was minted with: the
	// mint happens only if Key still holds that live session.
	Key   string
	Nonce []byte
}

// Ending is a session to end (Backend.End).
type Ending struct {
	// Key is the session's store key.
	Key string
	// User is the key of the user's index that holds the session.
	User string
	// Until is how long the key (and Mark) keep the mark of an ended
	// session, which Lookup reports as Ended: until the frontend token it
	// was minted from expires.
	Until time.Time
	// Mark, when set, is the key of the session's credential mark, which
	// is marked ended too (see NewSession.Mark).
	Mark string
	// Replaced ends the session without a sign-out mark, and only if the
	// key still holds the live session minted with Nonce (a concurrent
	// sign-out's mark, or a session minted anew, is left alone): the key
	// is removed and the index entry goes. The frontend token it was
	// minted from may mint again.
	Replaced bool
	// Nonce is the nonce of the session a Replaced end ends.
	Nonce []byte
}

// Entry is one session found through a user's index.
type Entry struct {
	// Key is the session's store key.
	Key string
	// Stored is what the key holds: a live session.
	Stored format.Stored
}

// Position is a place in a user's index. The index is ordered by expiry,
// latest first, then by key, last first (byte order, descending): the
// order of a Redis sorted set read in reverse, scored by expiry. An
// entry at a position comes after p when its expiry is earlier, or equal
// with a smaller key.
type Position struct {
	// Expires is the entry's expiry, in Unix milliseconds (the index's
	// score).
	Expires int64
	// Key is the entry's store key; "" only in the zero Position.
	Key string
}

// IsZero reports whether p is the zero Position: the start of the index.
func (p Position) IsZero() bool { return p.Key == "" }

// After reports whether an entry that expires at expires (Unix ms) with
// key comes after p in the index's order; everything comes after the zero
// Position.
func (p Position) After(expires int64, key string) bool {
	return p.IsZero() || expires < p.Expires || expires == p.Expires && key < p.Key
}

// Valid reports whether s can be minted: a session token, a user and a
// record of at most format.MaxRecordLen bytes.
func (s *NewSession) Valid() bool {
	_, _, ok := format.Split(s.Token)
	return ok && s.User != "" && s.Record != nil && len(s.Record) <= format.MaxRecordLen
}

// The errors a Backend returns. The first five are the ones applications
// see; package store exports them under the same names.
var (
	// ErrUnavailable is wrapped by every error a store returns: it could
	// not be reached or did not answer in time. It is never returned for
	// data that is merely absent.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrNotLive is returned by Commit when the token opens no live
	// session: it ended (signed out, expired) or never existed.
	ErrNotLive = errors.New("store: no live session for this token")
	// ErrUnsupported is returned for the scs calls sessiongate does not
	// support: Destroy and RenewToken (which call Delete) and Iterate.
	ErrUnsupported = errors.New("store: not supported by sessiongate: end sessions with middleware.Auth.SignOut, list them with Auth.Sessions")
	// ErrMisconfigured is wrapped (with ErrUnavailable) by the errors of a
	// store whose server is not set up for sessions.
	ErrMisconfigured = errors.New("store: Redis is not set up for sessions")
	// ErrSecretMismatch is returned by Check when the store keeps another
	// secret's fingerprint.
	ErrSecretMismatch = errors.New("store: the store holds another secret's fingerprint: " +
		"every process that shares a store must use the same secret")

	// ErrConflict is returned by Mint when the key no longer holds what
	// the caller saw: another process minted or ended the session
	// meanwhile.
	ErrConflict = errors.New("store: the session changed meanwhile")
	// ErrNotContinued is returned by Mint when NewSession.Continues is no
	// longer the live session it names.
	ErrNotContinued = errors.New("store: the session to continue ended meanwhile")
	// ErrSignedOut is returned by Mint when NewSession.Mark holds the mark
	// of an ended session: the credential was signed out.
	ErrSignedOut = errors.New("store: the credential was signed out")
	// ErrExpired is returned by Mint for a session whose Expires has
	// passed by the store's clock: it is not written.
	ErrExpired = errors.New("store: the session expired before it was stored")
	// ErrBadMint is returned by Mint for a NewSession that is not Valid:
	// a caller's mistake, not a client's.
	ErrBadMint = errors.New("store: Mint needs a session Token, a User and a Record of at most MaxRecordLen bytes")
)
