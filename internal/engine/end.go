package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// Reason says why sessions end. Only a sign-out or a revocation marks the
// frontend token (and credential) a session was minted from; a session
// replaced by another leaves no mark.
type Reason string

// The reasons sessions end.
const (
	SignedOut       Reason = "signed out"
	SignedOutAll    Reason = "signed out everywhere"
	SignedOutOthers Reason = "signed out elsewhere"
	Revoked         Reason = "revoked"
	UserRevoked     Reason = "user revoked"
	UpstreamRevoked Reason = "upstream session revoked"
	Replaced        Reason = "replaced"
)

// EndWhere ends the user's sessions that match (SignOut, sparing keep),
// and returns how many. The listing and the ending run detached from
// ctx's cancellation, bounded by ExchangeTimeout.
func (e *Engine) EndWhere(ctx context.Context, why Reason, providerName, userID string, keep *format.Session, match func(*format.Session) bool) (int, error) {
	ctx, cancel := e.detached(ctx)
	defer cancel()
	all, err := e.List(ctx, providerName, userID)
	if err != nil {
		return 0, err
	}
	matched := slices.DeleteFunc(all, func(s *format.Session) bool { return !match(s) })
	if len(matched) == 0 {
		return 0, nil
	}
	return len(matched), e.SignOut(ctx, why, keep, matched...)
}

// EndUser ends every session of s's user, s always included (even if the
// user's index has lost it), and returns how many. It runs detached from
// ctx's cancellation, bounded by ExchangeTimeout.
func (e *Engine) EndUser(ctx context.Context, why Reason, s *format.Session) (int, error) {
	ctx, cancel := e.detached(ctx)
	defer cancel()
	all, err := e.List(ctx, s.Identity.Provider, s.Identity.UserID)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(all, func(o *format.Session) bool { return o.Key == s.Key }) {
		all = append(all, s)
	}
	return len(all), e.SignOut(ctx, why, nil, all...)
}

// SignOut ends sessions of one user with their marks, then the user's
// other live sessions that carry on what it ended: those minted from the
// same credentials (another spelling of a credential, minted while the
// first end was on its way, before the credential's mark), and those that
// continue an ended session (the same device signing in again with a
// refreshed token while it was being signed out: a continuation keeps the
// public id of the session it continues, and public ids are otherwise
// unique). So a sign-out never
// returns while a session of its credentials or of its devices lives:
// every mint after the marks meets them, and a continuation that came
// first is in the user's index when it lists it; it lists again until no
// heir is left (an heir may be continued once more meanwhile), and after
// maxHeirRounds it gives up with an error wrapping
// backend.ErrUnavailable, for the caller to retry. It runs detached from
// ctx's cancellation (a client that leaves does not undo its sign-out),
// bounded by ExchangeTimeout.
//
// keep, when set, is the caller's own session, which a sign-out of its
// other devices spares: the tokens an ended device used before that keep
// holds now (its key, its credential) are not marked, and keep's device
// is no heir, even continued meanwhile by another tab.
func (e *Engine) SignOut(ctx context.Context, why Reason, keep *format.Session, sessions ...*format.Session) error {
	if len(sessions) == 0 {
		return nil
	}
	if err := e.end(ctx, why, keep, sessions...); err != nil {
		return err
	}
	creds := map[format.Credential]bool{}
	devices := map[string]bool{}
	remember := func(ended []*format.Session) {
		for _, s := range ended {
			devices[s.ID] = true
			if s.Credential != (format.Credential{}) {
				creds[s.Credential] = true
			}
			for _, p := range s.Preds {
				if p.Credential != (format.Credential{}) {
					creds[p.Credential] = true
				}
			}
		}
		if keep != nil {
			delete(creds, keep.Credential)
			delete(devices, keep.ID)
		}
	}
	remember(sessions)
	ctx, cancel := e.detached(ctx)
	defer cancel()
	id := sessions[0].Identity
	// Until a listing finds no heir: an heir may itself be continued
	// between the listing that finds it and its end.
	for range maxHeirRounds {
		rest, err := e.List(ctx, id.Provider, id.UserID)
		if err != nil {
			return err
		}
		heirs := slices.DeleteFunc(rest, func(o *format.Session) bool {
			return keep != nil && (o.Key == keep.Key || o.ID == keep.ID) || !creds[o.Credential] && !devices[o.ID]
		})
		if len(heirs) == 0 {
			return nil
		}
		if err := e.end(ctx, why, keep, heirs...); err != nil {
			return err
		}
		remember(heirs)
	}
	return fmt.Errorf("%w: the signed-out devices kept signing in again meanwhile; retry", backend.ErrUnavailable)
}

// maxHeirRounds bounds how often SignOut looks again for heirs: each round
// an heir survives needs a fresh sign-in (an upstream validation) within
// one store round trip.
const maxHeirRounds = 8

// end ends sessions, signed out or revoked: each keeps the mark of an
// ended session on its key (and its credential's mark) until its frontend
// token expires (see markUntil), so a signed-out token cannot mint again.
// The tokens the devices used before (their predecessors) are marked too,
// but for those keep holds now (see SignOut).
func (e *Engine) end(ctx context.Context, why Reason, keep *format.Session, sessions ...*format.Session) error {
	ends := make([]backend.Ending, 0, len(sessions))
	for _, s := range sessions {
		ends = append(ends, backend.Ending{Key: s.Key, User: userIndex(s.Identity), Until: e.markUntil(s), Mark: e.markOf(s)})
		for _, p := range s.Preds {
			pe := backend.Ending{Key: p.Key, User: userIndex(s.Identity), Until: p.Until, Mark: e.cfg.Secret.Mark(userIndex(s.Identity), p.Credential)}
			if keep != nil {
				if p.Key == keep.Key {
					continue
				}
				if p.Credential != (format.Credential{}) && p.Credential == keep.Credential {
					pe.Mark = ""
				}
			}
			ends = append(ends, pe)
		}
	}
	return e.write(ctx, why, ends, sessions)
}

// Replace ends old, replaced by another session that does not continue
// it (another user's sign-in on the same device, or a session the token
// already had): without a sign-out mark, so old's token may sign in
// again, and only if old is still the session it was (a concurrent
// sign-out's mark stays). A continued session is ended by its mint.
func (e *Engine) Replace(ctx context.Context, old *format.Session) error {
	en := backend.Ending{Key: old.Key, User: userIndex(old.Identity), Until: e.markUntil(old), Replaced: true, Nonce: old.Nonce}
	return e.write(ctx, Replaced, []backend.Ending{en}, []*format.Session{old})
}

// write writes ends, the ends of sessions, detached from ctx's
// cancellation: one store write (WriteEnd) for the observer, then an
// ended event, with why, per session.
func (e *Engine) write(ctx context.Context, why Reason, ends []backend.Ending, sessions []*format.Session) (err error) {
	defer e.recoverInto(&err, "store")
	ctx, cancel := e.detached(ctx)
	defer cancel()
	start := writeOf(WriteEnd, sessions[0])
	if len(sessions) > 1 {
		start.Session = "" // the user's, several
	}
	wctx, o := e.begin(ctx, start)
	err = e.cfg.Store.End(wctx, ends...)
	e.wrote(wctx, o, err)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		e.ended(ctx, why, s)
	}
	return nil
}

// markUntil is how long a session's marks last: until its frontend token
// expires (Identity.Expiry, the provider's exp plus its leeway). A
// provider that says nothing of the expiry gets the longest the session
// could have lived from now: Lifetime.
func (e *Engine) markUntil(s *format.Session) time.Time {
	if !s.Identity.Expiry.IsZero() {
		return s.Identity.Expiry
	}
	if until := e.cfg.Now().Add(e.cfg.Lifetime); until.After(s.Expires) {
		return until
	}
	return s.Expires
}

// markOf returns the store key of the sign-out mark of s's credential, ""
// when s has none.
func (e *Engine) markOf(s *format.Session) string {
	return e.cfg.Secret.Mark(userIndex(s.Identity), s.Credential)
}

// userIndex is the key of id's session index.
func userIndex(id provider.Identity) string { return format.UserIndex(id.Provider, id.UserID) }
