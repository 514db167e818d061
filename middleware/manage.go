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
func (a *Auth) Sessions(ctx context.Context, providerName, userID string) ([]*Session, error) {
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
	return a.end(ctx, "signed out", s)
}

// SignOutAll ends every session of the current request's user, the
// current one included, and returns how many it ended.
func (a *Auth) SignOutAll(ctx context.Context) (int, error) {
	s, ok := SessionFrom(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	return a.endWhere(ctx, "signed out everywhere", s.Identity.Provider, s.Identity.UserID, func(*Session) bool { return true })
}

// SignOutOthers ends every session of the current request's user except
// the current one, and returns how many it ended.
func (a *Auth) SignOutOthers(ctx context.Context) (int, error) {
	s, ok := SessionFrom(ctx)
	if !ok {
		return 0, ErrNoSession
	}
	return a.endWhere(ctx, "signed out elsewhere", s.Identity.Provider, s.Identity.UserID, func(o *Session) bool { return o.key != s.key })
}

// Revoke ends the session with public id id, if it belongs to the current
// request's user; otherwise it returns ErrNotFound and changes nothing.
func (a *Auth) Revoke(ctx context.Context, id string) error {
	s, ok := SessionFrom(ctx)
	if !ok {
		return ErrNoSession
	}
	n, err := a.endWhere(ctx, "revoked", s.Identity.Provider, s.Identity.UserID, func(o *Session) bool { return sameKey(o.ID, id) })
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// RevokeUser ends every session of a user, with no request at hand: for a
// backend job that disables an account. It returns how many it ended.
func (a *Auth) RevokeUser(ctx context.Context, providerName, userID string) (int, error) {
	return a.endWhere(ctx, "user revoked", providerName, userID, func(*Session) bool { return true })
}

// RevokeUpstreamSession ends every session minted from one sign-in at the
// provider (Identity.SessionID, Plurality's uniqueSessionId), for
// back-channel logout. It returns how many it ended.
func (a *Auth) RevokeUpstreamSession(ctx context.Context, providerName, userID, upstreamSessionID string) (int, error) {
	if upstreamSessionID == "" {
		return 0, nil
	}
	return a.endWhere(ctx, "upstream session revoked", providerName, userID, func(o *Session) bool {
		return o.Identity.SessionID == upstreamSessionID
	})
}

// endWhere ends the user's sessions that match, in one store round trip.
func (a *Auth) endWhere(ctx context.Context, why, providerName, userID string, match func(*Session) bool) (int, error) {
	all, err := a.Sessions(ctx, providerName, userID)
	if err != nil {
		return 0, err
	}
	matched := slices.DeleteFunc(all, func(s *Session) bool { return !match(s) })
	if len(matched) == 0 {
		return 0, nil
	}
	return len(matched), a.end(ctx, why, matched...)
}

// decodeEntry decodes one stored session, nil when it is not one of ours.
func (a *Auth) decodeEntry(e store.Entry) *Session {
	_, values, err := a.sm.Codec.Decode(e.Data)
	if err != nil {
		return nil
	}
	b, ok := values[recordKey].([]byte)
	if !ok {
		return nil
	}
	s, err := decodeRecord(e.Key, b)
	if err != nil {
		return nil
	}
	return s
}
