package engine

import (
	"context"
	"errors"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
)

// Loaded is a live session loaded for a request.
type Loaded struct {
	// Session is the session; it is shared: do not modify it.
	Session *format.Session
	// Token is the session token that opens it.
	Token string
	// Ctx carries the session's scs values (Values).
	Ctx context.Context
	// Minted is true when this exchange created the session.
	Minted bool
	// Continued is true when the exchange's mint continued the session the
	// request carried (Exchange's current), which then already ended.
	Continued bool
}

// Load loads the session that token opens: one store read, and no
// decoding when the stored record is the one decoded last time. A token
// with no live session gives nil and no error; the error is for a store
// that cannot answer (wrapping backend.ErrUnavailable).
func (e *Engine) Load(ctx context.Context, token string) (_ *Loaded, err error) {
	defer e.recoverInto(&err, "store")
	st, err := backend.Open(ctx, e.cfg.Store, token)
	if err != nil {
		e.Counters.StoreErrors.Add(1)
		return nil, err
	}
	return e.loadStored(ctx, token, st)
}

// loadStored is Load for a session already read from the store (st, which
// token opens): it decodes the record and puts the session's scs values in
// the returned context without reading the store again.
func (e *Engine) loadStored(ctx context.Context, token string, st format.Stored) (*Loaded, error) {
	if !st.Live() {
		return nil, nil
	}
	s := e.records.get(token, st.Record)
	if s != nil {
		e.Counters.CacheHits.Add(1)
	} else {
		e.Counters.CacheMisses.Add(1)
		var err error
		if s, err = format.DecodeRecord(format.KeyOf(token), st); err != nil {
			e.cfg.Logger.Warn("sessiongate: undecodable session record ignored")
			return nil, nil
		}
		e.records.put(token, st.Record, s)
	}
	if !e.live(s, e.cfg.Now()) {
		return nil, nil
	}
	loaded, err := e.values.Load(backend.Prefetched(ctx, s.Key, st), token)
	if err != nil {
		if errors.Is(err, backend.ErrUnavailable) {
			e.Counters.StoreErrors.Add(1)
			return nil, err
		}
		// The codec could not decode the handler's values: not a session
		// of ours.
		e.cfg.Logger.Warn("sessiongate: undecodable session values ignored", "session", s.ID)
		return nil, nil
	}
	return &Loaded{Session: s, Token: token, Ctx: loaded}, nil
}

// live reports whether s has neither expired nor been idle too long at now.
func (e *Engine) live(s *format.Session, now time.Time) bool {
	if !now.Before(s.Expires) {
		return false
	}
	return e.cfg.IdleTimeout <= 0 || now.Before(s.LastSeen.Add(e.cfg.IdleTimeout))
}

// Save writes, after the handler ran in ctx (a context derived from l.Ctx),
// what changed in the request's session: its activity when a keep-alive
// is due (the record), and the values the handler put (scs's Commit).
// Each write only ever updates a session that l's token still opens: a
// session signed out meanwhile is not written back. Failures are logged.
func (e *Engine) Save(ctx context.Context, l *Loaded) {
	var err error
	defer func() {
		if err != nil {
			e.cfg.Logger.Error("sessiongate: saving the session failed", "session", l.Session.ID, "error", err)
		}
	}()
	defer e.recoverInto(&err, "store")
	s := l.Session
	if e.cfg.IdleTimeout > 0 {
		if now := e.cfg.Now(); now.Sub(s.LastSeen) >= e.cfg.KeepAliveInterval {
			seen := *s
			seen.LastSeen = now
			if err := e.cfg.Store.Touch(ctx, l.Token, format.EncodeRecord(&seen)); err != nil {
				e.cfg.Logger.Error("sessiongate: recording session activity failed", "session", s.ID, "error", err)
			}
		}
	}
	if e.values.Status(ctx) != scs.Modified {
		return
	}
	// The handler's values are written even if its client has left; the
	// store's own deadline bounds the write.
	switch _, _, err := e.values.Commit(context.WithoutCancel(ctx)); {
	case errors.Is(err, backend.ErrNotLive):
		// Signed out, or continued by a new sign-in of the same device,
		// while the handler ran: its values are not written to a session
		// that is no longer this token's.
		e.cfg.Logger.Warn("sessiongate: session values not saved: the session ended or was continued meanwhile", "session", s.ID)
	case err != nil:
		e.cfg.Logger.Error("sessiongate: saving session values failed", "session", s.ID, "error", err)
	}
}
