package middleware

import (
	"context"
	"errors"
	"slices"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// ErrNoSession is returned by the methods that act on the current session
// when the context has none.
var ErrNoSession = errors.New("sessiongate/middleware: the request has no session")

// ErrNotFound is returned by Revoke for an id that is not one of the
// caller's live sessions.
var ErrNotFound = errors.New("sessiongate/middleware: no such session")

// Sessions returns the live sessions of one user of one provider, newest
// first, read through the user's index: the cost grows with that user's
// sessions only. When ctx carries a session, it is flagged Current.
func (a *Auth) Sessions(ctx context.Context, providerName, userID string) (_ []*Session, err error) {
	defer a.recoverInto(&err, "store")
	entries, err := a.store.Sessions(ctx, indexKey(provider.Identity{Provider: providerName, UserID: userID}))
	if err != nil {
		a.counters.storeErrors.Add(1)
		return nil, err
	}
	current, _ := SessionFrom(ctx)
	now := a.cfg.Now()
	out := make([]*Session, 0, len(entries))
	for _, e := range entries {
		s := a.decodeEntry(e)
		if s == nil || !a.live(s, now) {
			continue
		}
		s.Current = current != nil && current.key == s.key
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *Session) int { return y.Created.Compare(x.Created) })
	return out, nil
}

// SignOut ends the session of the request whose context is ctx. Its
// frontend token cannot mint a new session until it expires.
func (a *Auth) SignOut(ctx context.Context) error {
	s, ok := SessionFrom(ctx)
	if !ok {
		return ErrNoSession
	}
	return a.signOut(ctx, endSignedOut, s)
}

// SignOutAll ends every session of the current request's user, the
// current one always included (even if the user's index has lost it), and
// returns how many it ended.
func (a *Auth) SignOutAll(ctx context.Context) (int, error) {
	s, ok := SessionFrom(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	ctx, cancel := a.detached(ctx)
	defer cancel()
	all, err := a.Sessions(ctx, s.Identity.Provider, s.Identity.UserID)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(all, func(o *Session) bool { return o.key == s.key }) {
		all = append(all, s)
	}
	return len(all), a.signOut(ctx, endSignedOutAll, all...)
}

// SignOutOthers ends every session of the current request's user except
// the current one, and returns how many it ended.
func (a *Auth) SignOutOthers(ctx context.Context) (int, error) {
	s, ok := SessionFrom(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	return a.endWhere(ctx, endSignedOutOthers, s.Identity.Provider, s.Identity.UserID, func(o *Session) bool { return o.key != s.key })
}

// Revoke ends the session with public id id, if it belongs to the current
// request's user; otherwise it returns ErrNotFound and changes nothing.
func (a *Auth) Revoke(ctx context.Context, id string) error {
	s, ok := SessionFrom(ctx)
	if !ok {
		return ErrNoSession
	}
	n, err := a.endWhere(ctx, endRevoked, s.Identity.Provider, s.Identity.UserID, func(o *Session) bool { return sameKey(o.ID, id) })
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// RevokeUser ends every session of a user, with no request at hand: for a
// backend job that disables an account. It returns how many it ended.
func (a *Auth) RevokeUser(ctx context.Context, providerName, userID string) (int, error) {
	return a.endWhere(ctx, endUserRevoked, providerName, userID, func(*Session) bool { return true })
}

// RevokeUpstreamSession ends every session minted from one sign-in at the
// provider (Identity.SessionID, Plurality's uniqueSessionId), for
// back-channel logout. It returns how many it ended.
func (a *Auth) RevokeUpstreamSession(ctx context.Context, providerName, userID, upstreamSessionID string) (int, error) {
	if upstreamSessionID == "" {
		return 0, nil
	}
	return a.endWhere(ctx, endUpstreamRevoked, providerName, userID, func(o *Session) bool {
		return o.Identity.SessionID == upstreamSessionID
	})
}

// endWhere ends the user's sessions that match, in one store round trip
// after the listing. Both run detached from ctx's cancellation (see end).
func (a *Auth) endWhere(ctx context.Context, why endReason, providerName, userID string, match func(*Session) bool) (int, error) {
	ctx, cancel := a.detached(ctx)
	defer cancel()
	all, err := a.Sessions(ctx, providerName, userID)
	if err != nil {
		return 0, err
	}
	matched := slices.DeleteFunc(all, func(s *Session) bool { return !match(s) })
	if len(matched) == 0 {
		return 0, nil
	}
	return len(matched), a.signOut(ctx, why, matched...)
}

// signOut ends sessions of one user with their marks (end), then the
// user's other live sessions minted from the same credentials: a session
// of another spelling of a credential minted while the first end was on
// its way (before the credential's mark) ends too, so a sign-out never
// answers while a session of its credential lives. Every mint after the
// mark meets it.
func (a *Auth) signOut(ctx context.Context, why endReason, sessions ...*Session) error {
	if err := a.end(ctx, why, sessions...); err != nil {
		return err
	}
	creds := map[[store.CredentialLen]byte]bool{}
	for _, s := range sessions {
		for _, c := range append([][store.CredentialLen]byte{s.cred}, predCreds(s)...) {
			if c != ([store.CredentialLen]byte{}) {
				creds[c] = true
			}
		}
	}
	if len(creds) == 0 {
		return nil
	}
	ctx, cancel := a.detached(ctx)
	defer cancel()
	id := sessions[0].Identity
	rest, err := a.Sessions(ctx, id.Provider, id.UserID)
	if err != nil {
		return err
	}
	twins := slices.DeleteFunc(rest, func(o *Session) bool { return !creds[o.cred] })
	if len(twins) == 0 {
		return nil
	}
	return a.end(ctx, why, twins...)
}

// predCreds returns the credential ids of the sessions s continues.
func predCreds(s *Session) [][store.CredentialLen]byte {
	out := make([][store.CredentialLen]byte, len(s.preds))
	for i, p := range s.preds {
		out[i] = p.cred
	}
	return out
}

// decodeEntry decodes one stored session, nil when it is not one of ours.
func (a *Auth) decodeEntry(e store.Entry) *Session {
	s, err := decodeRecord(e.Key, e.Nonce, e.Record)
	if err != nil {
		return nil
	}
	s.cred = e.Credential
	return s
}

// detached returns a context for a write that ends sessions: it keeps
// ctx's values (the request's session) but not its cancellation, so a
// client that leaves does not undo its sign-out, and it is bounded by
// ExchangeTimeout instead.
func (a *Auth) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ExchangeTimeout)
}
