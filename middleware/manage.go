package middleware

import (
	"context"
	"errors"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/internal/format"
)

// ErrNoSession is returned by the methods that act on the current session
// when the context has none.
var ErrNoSession = errors.New("sessiongate/middleware: the request has no session")

// ErrNotFound is returned by Revoke for an id that is not one of the
// caller's live sessions.
var ErrNotFound = errors.New("sessiongate/middleware: no such session")

// Sessions returns every live session of one user of one provider,
// newest first, read through the user's index a page at a time: the cost
// grows with that user's sessions only, but it does grow, in time and in
// memory (a user with 10,000 sessions gets 10,000). Serve lists to
// clients with SessionsPage, whose pages cost the same whatever the
// user's total. When ctx carries a session, it is flagged Current.
func (a *Auth) Sessions(ctx context.Context, providerName, userID string) ([]*Session, error) {
	return sessions(ctx, a.engine, providerName, userID)
}

func sessions(ctx context.Context, e *engine.Engine, providerName, userID string) ([]*Session, error) {
	all, err := e.List(ctx, providerName, userID)
	if err != nil {
		return nil, err
	}
	return views(all, currentKey(ctx)), nil
}

// The page sizes of SessionsPage and of the listing routes.
const (
	// DefaultPageSize is the most sessions on a page when the request
	// names no limit.
	DefaultPageSize = 50
	// MaxPageSize is the largest limit a page request may name.
	MaxPageSize = 200
)

// ErrInvalidLimit is returned by SessionsPage for a PageRequest.Limit
// below 0 or above MaxPageSize (the routes answer 400 invalid_request).
var ErrInvalidLimit = errors.New("sessiongate/middleware: a page holds 1 to 200 sessions")

// ErrInvalidCursor is returned by SessionsPage for a PageRequest.Cursor
// that is not a Next this deployment returned for that user's listing:
// malformed, altered, forged, another user's, or issued under another
// Config.Secret (the routes answer 400 invalid_request). Nothing is read
// from the store.
var ErrInvalidCursor = errors.New("sessiongate/middleware: the listing cursor is not valid: list again from the first page")

// PageRequest asks for one page of a user's sessions (SessionsPage).
type PageRequest struct {
	// Limit is the most sessions on the page, 1 to MaxPageSize; 0 means
	// DefaultPageSize.
	Limit int
	// Cursor is the Next of the page before; "" asks for the first page.
	Cursor string
}

// SessionPage is one page of a user's sessions. Its JSON is the listing
// routes' answer: {"sessions": [...], "next": "..."}, next left out on
// the last page.
type SessionPage struct {
	// Sessions are the page's sessions, never nil.
	Sessions []*Session `json:"sessions"`
	// Next is the cursor of the next page, "" after the last one. It is
	// opaque (no store key or token in it, sealed with a key derived from
	// Config.Secret) and good for the same user's listing only, on any
	// process that shares the store and the secret.
	Next string `json:"next,omitempty"`
}

// SessionsPage returns one page of the live sessions of one user of one
// provider, latest expiry first (for sessions of one Config.Lifetime,
// newest first), ties in expiry in a fixed order of their own. A page
// costs the same store work (one read of the page's index entries, one of
// their sessions) whether the user has 10 sessions or 10,000. A page may
// hold fewer than Limit sessions while more follow (ended and idle
// sessions are skipped): only an empty Next ends the listing. Following
// Next from the first page to the last lists each session that lives
// throughout exactly once, whatever is signed in or out meanwhile;
// sessions minted during the walk may or may not be listed. When ctx
// carries a session, it is flagged Current.
//
// It returns ErrInvalidLimit or ErrInvalidCursor for a bad request, and
// an error wrapping store.ErrUnavailable when the store cannot answer.
func (a *Auth) SessionsPage(ctx context.Context, providerName, userID string, req PageRequest) (SessionPage, error) {
	return sessionsPage(ctx, a.engine, providerName, userID, req, currentKey(ctx))
}

func sessionsPage(ctx context.Context, e *engine.Engine, providerName, userID string, req PageRequest, current string) (SessionPage, error) {
	if req.Limit < 0 || req.Limit > MaxPageSize {
		return SessionPage{}, ErrInvalidLimit
	}
	if req.Limit == 0 {
		req.Limit = DefaultPageSize
	}
	page, next, err := e.ListPage(ctx, providerName, userID, req.Cursor, req.Limit)
	if errors.Is(err, engine.ErrBadCursor) {
		return SessionPage{}, ErrInvalidCursor
	}
	if err != nil {
		return SessionPage{}, err
	}
	return SessionPage{Sessions: views(page, current), Next: next}, nil
}

// currentKey is the store key of ctx's session, "" when none.
func currentKey(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil && st.loaded.Session != nil {
		return st.loaded.Session.Key
	}
	return ""
}

// views returns the public views of all, the one whose key is current
// flagged Current; never nil.
func views(all []*format.Session, current string) []*Session {
	views, out := make([]Session, len(all)), make([]*Session, len(all))
	for i, s := range all {
		views[i] = view(s, current != "" && s.Key == current)
		out[i] = &views[i]
	}
	return out
}

// SignOut ends the session of the request whose context is ctx. Its
// frontend token cannot mint a new session until it expires.
func (a *Auth) SignOut(ctx context.Context) error {
	s, ok := current(ctx)
	if !ok {
		return ErrNoSession
	}
	return a.engine.SignOut(ctx, engine.SignedOut, nil, s)
}

// SignOutAll ends every session of the current request's user, the
// current one always included (even if the user's index has lost it), and
// returns how many it ended.
func (a *Auth) SignOutAll(ctx context.Context) (int, error) {
	s, ok := current(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	return a.engine.EndUser(ctx, engine.SignedOutAll, s)
}

// SignOutOthers ends every session of the current request's user except
// the current one, and returns how many it ended.
func (a *Auth) SignOutOthers(ctx context.Context) (int, error) {
	s, ok := current(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	// Others are other devices: a tab that continued this session
	// meanwhile keeps its public id, and is this device.
	return a.engine.EndWhere(ctx, engine.SignedOutOthers, s.Identity.Provider, s.Identity.UserID, s,
		func(o *format.Session) bool { return o.ID != s.ID })
}

// Revoke ends the session with public id id, if it belongs to the current
// request's user; otherwise it returns ErrNotFound and changes nothing.
func (a *Auth) Revoke(ctx context.Context, id string) error {
	s, ok := current(ctx)
	if !ok {
		return ErrNoSession
	}
	keep := s // revoking another device spares this one
	if format.Equal(s.ID, id) {
		keep = nil
	}
	n, err := a.engine.EndWhere(ctx, engine.Revoked, s.Identity.Provider, s.Identity.UserID, keep,
		func(o *format.Session) bool { return format.Equal(o.ID, id) })
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// RevokeUser ends every session of a user, with no request at hand: for a
// backend job that disables an account. It returns how many it ended.
// (A job that serves no requests can use a Revoker instead.)
func (a *Auth) RevokeUser(ctx context.Context, providerName, userID string) (int, error) {
	return revokeUser(ctx, a.engine, providerName, userID)
}

// RevokeUpstreamSession ends every session minted from one sign-in at the
// provider (Identity.SessionID, Plurality's uniqueSessionId), for
// back-channel logout. It returns how many it ended.
func (a *Auth) RevokeUpstreamSession(ctx context.Context, providerName, userID, upstreamSessionID string) (int, error) {
	return revokeUpstreamSession(ctx, a.engine, providerName, userID, upstreamSessionID)
}

// Revoker lists and ends sessions with no request at hand and no Provider:
// for a backend job (an account-deletion job, a back-channel logout
// endpoint in another process) over the store of the middleware whose
// sessions it manages. Build it with NewRevoker; it is safe for concurrent
// use.
type Revoker struct{ engine *engine.Engine }

// NewRevoker returns a Revoker for the sessions of the middleware
// configured by cfg: cfg.Store and cfg.Secret must be that middleware's
// (a sign-out marks each session's credential under keys derived from the
// secret), and cfg.Lifetime, IdleTimeout, ExchangeTimeout, Logger and Now
// apply as they do there. cfg.Provider is not used and may be nil.
//
// NewRevoker panics if cfg.Store is nil (a new memory store would hold
// nothing of the middleware's) or cfg.Secret is empty (a random one would
// mark nothing the middleware reads) or shorter than 16 bytes.
func NewRevoker(cfg Config) *Revoker {
	if cfg.Store == nil || cfg.Secret == "" {
		panic("sessiongate/middleware: NewRevoker needs the middleware's Config.Store and Config.Secret")
	}
	ownNow := cfg.Now != nil
	cfg = cfg.withDefaults()
	checkSecret(cfg.Secret)
	cfg.Now = storeClock(cfg, ownNow)
	return &Revoker{engine: newEngine(cfg, nil)}
}

// Sessions returns every live session of one user of one provider, newest
// first (see Auth.Sessions: for huge users, prefer SessionsPage).
func (r *Revoker) Sessions(ctx context.Context, providerName, userID string) ([]*Session, error) {
	return sessions(ctx, r.engine, providerName, userID)
}

// SessionsPage returns one page of the live sessions of one user of one
// provider (see Auth.SessionsPage), none flagged Current.
func (r *Revoker) SessionsPage(ctx context.Context, providerName, userID string, req PageRequest) (SessionPage, error) {
	return sessionsPage(ctx, r.engine, providerName, userID, req, "")
}

// RevokeUser ends every session of a user (see Auth.RevokeUser). It first
// compares its secret's fingerprint with the one the store keeps (never
// recording it): with another secret, its sign-out marks would be written
// where the middleware never reads them, so it returns
// store.ErrSecretMismatch and ends nothing. The store keeps the
// fingerprint the middleware's Check records: call auth.Check at start,
// as README says, or a Revoker cannot tell.
func (r *Revoker) RevokeUser(ctx context.Context, providerName, userID string) (int, error) {
	if err := r.engine.CheckSecret(ctx); err != nil {
		return 0, err
	}
	return revokeUser(ctx, r.engine, providerName, userID)
}

// RevokeUpstreamSession ends every session minted from one sign-in at the
// provider (see Auth.RevokeUpstreamSession), after the same check of the
// secret as RevokeUser.
func (r *Revoker) RevokeUpstreamSession(ctx context.Context, providerName, userID, upstreamSessionID string) (int, error) {
	if err := r.engine.CheckSecret(ctx); err != nil {
		return 0, err
	}
	return revokeUpstreamSession(ctx, r.engine, providerName, userID, upstreamSessionID)
}

func revokeUser(ctx context.Context, e *engine.Engine, providerName, userID string) (int, error) {
	return e.EndWhere(ctx, engine.UserRevoked, providerName, userID, nil, func(*format.Session) bool { return true })
}

func revokeUpstreamSession(ctx context.Context, e *engine.Engine, providerName, userID, upstreamSessionID string) (int, error) {
	if upstreamSessionID == "" {
		return 0, nil
	}
	return e.EndWhere(ctx, engine.UpstreamRevoked, providerName, userID, nil, func(o *format.Session) bool {
		return o.Identity.SessionID == upstreamSessionID
	})
}

// current returns the session of the request whose context is ctx.
func current(ctx context.Context) (*format.Session, bool) {
	st := stateFrom(ctx)
	if st == nil || st.loaded.Session == nil {
		return nil, false
	}
	return st.loaded.Session, true
}
