package middleware

import (
	"context"
	"errors"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessiongate/sessiongate/store"
)

// load loads the session of token: one store read, and no decoding when
// the stored record is the one decoded last time. A token with no live
// session gives a nil Session and no error; the error is for a store that
// cannot answer.
func (a *Auth) load(ctx context.Context, token string) (_ context.Context, _ *Session, err error) {
	defer a.recoverInto(&err, "store")
	st, err := store.Open(ctx, a.store, token)
	if err != nil {
		a.counters.storeErrors.Add(1)
		return nil, nil, err
	}
	return a.loadStored(ctx, token, st)
}

// loadStored is load for a session already read from the store (st, which
// token opens): it decodes the record and puts the session's scs values in
// the returned context without reading the store again.
func (a *Auth) loadStored(ctx context.Context, token string, st store.Stored) (context.Context, *Session, error) {
	if !st.Live() {
		return ctx, nil, nil
	}
	s := a.records.get(token, st.Record)
	if s != nil {
		a.counters.cacheHits.Add(1)
	} else {
		a.counters.cacheMisses.Add(1)
		var err error
		if s, err = decodeRecord(store.Key(token), st.Nonce, st.Record); err != nil {
			a.cfg.Logger.Warn("sessiongate: undecodable session record ignored")
			return ctx, nil, nil
		}
		s.cred = st.Credential
		s.Current = true
		a.records.put(token, st.Record, s)
	}
	if !a.live(s, a.cfg.Now()) {
		return ctx, nil, nil
	}
	loaded, err := a.sm.Load(store.Prefetched(ctx, s.key, st), token)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			a.counters.storeErrors.Add(1)
			return nil, nil, err
		}
		// The codec could not decode the handler's values: not a session
		// of ours.
		a.cfg.Logger.Warn("sessiongate: undecodable session values ignored", "session", s.ID)
		return ctx, nil, nil
	}
	return loaded, s, nil
}

// live reports whether s has neither expired nor been idle too long at now.
func (a *Auth) live(s *Session, now time.Time) bool {
	if !now.Before(s.Expires) {
		return false
	}
	return a.cfg.IdleTimeout <= 0 || now.Before(s.LastSeen.Add(a.cfg.IdleTimeout))
}

// save writes, after the handler, what changed in the request's session:
// its activity when a keep-alive is due (the record), and the values the
// handler put (scs's Commit). Each write only ever updates a session that
// the request's token still opens: a session signed out meanwhile is not
// written back.
func (a *Auth) save(ctx context.Context, st *state) {
	var err error
	defer func() {
		if err != nil {
			a.cfg.Logger.Error("sessiongate: saving the session failed", "session", st.session.ID, "error", err)
		}
	}()
	defer a.recoverInto(&err, "store")
	s := st.session
	if a.cfg.IdleTimeout > 0 {
		if now := a.cfg.Now(); now.Sub(s.LastSeen) >= a.cfg.KeepAliveInterval {
			seen := *s
			seen.LastSeen = now
			if err := a.store.Touch(ctx, st.token, encodeRecord(&seen)); err != nil {
				a.cfg.Logger.Error("sessiongate: recording session activity failed", "session", s.ID, "error", err)
			}
		}
	}
	if a.sm.Status(ctx) != scs.Modified {
		return
	}
	// The handler's values are written even if its client has left; the
	// store's own deadline bounds the write.
	switch _, _, err := a.sm.Commit(context.WithoutCancel(ctx)); {
	case errors.Is(err, store.ErrNotLive):
		// Signed out, or continued by a new sign-in of the same device,
		// while the handler ran: its values are not written to a session
		// that is no longer this token's.
		a.cfg.Logger.Warn("sessiongate: session values not saved: the session ended or was continued meanwhile", "session", s.ID)
	case err != nil:
		a.cfg.Logger.Error("sessiongate: saving session values failed", "session", s.ID, "error", err)
	}
}
