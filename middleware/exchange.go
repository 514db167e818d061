package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// exchanged is the session a frontend token was exchanged for, loaded into
// the request's context.
type exchanged struct {
	token   string
	session *Session
	ctx     context.Context
	minted  bool
}

// flightResult is what one shared exchange hands every waiter.
type flightResult struct {
	token  string
	minted bool
}

// errSignedOut is the answer for a token whose session was signed out:
// it cannot mint again until it expires.
var errSignedOut = &provider.InvalidTokenError{Provider: "sessiongate", Reason: "the token's session was signed out"}

// errRejectedRecently is the answer for a token the negative cache holds.
var errRejectedRecently = &provider.InvalidTokenError{Provider: "sessiongate", Reason: "rejected recently"}

// isGuess reports whether an exchange failed on a token never seen to be
// good: rejected upstream now, not a repeat of a recent rejection and not
// the token of a signed-out session.
func isGuess(err error) bool {
	return errors.Is(err, provider.ErrInvalidToken) && err != errRejectedRecently && err != errSignedOut
}

// exchange returns the session for frontToken: the live one already minted
// from it (one store read), or a new one after the provider validated the
// token. Concurrent exchanges of one token share a single validation and
// mint, detached from any one client's cancellation; processes that share
// a store and a secret mint at most one session per token between them.
func (a *Auth) exchange(r *http.Request, frontToken string) (*exchanged, error) {
	a.counters.exchanges.Add(1)
	base := r.Context()
	sel := a.selector(frontToken)
	key := store.KeyOf(sel)
	if res, _, err := a.linked(base, frontToken, sel, key); err != nil || res != nil {
		if res != nil {
			a.counters.reused.Add(1)
		}
		return res, err
	}
	if a.negative.rejected(key) {
		a.counters.negativeHits.Add(1)
		return nil, errRejectedRecently
	}

	client := clientOf(r, a.cfg.ClientIP)
	ch := a.flights.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(base), a.cfg.ExchangeTimeout)
		defer cancel()
		return a.validateAndMint(ctx, frontToken, sel, key, client)
	})
	var fr flightResult
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		fr = res.Val.(flightResult)
	case <-base.Done():
		return nil, base.Err()
	}

	ctx, s, err := a.load(base, fr.token)
	if err != nil {
		return nil, err
	}
	if s == nil {
		// Ended between the mint and now: signed out elsewhere.
		return nil, errSignedOut
	}
	return &exchanged{token: fr.token, session: s, ctx: ctx, minted: fr.minted}, nil
}

// linked returns the live session minted from a frontend token (whose
// selector is sel and store key key), with what the store holds at its
// key; nil when there is none (never minted, expired, idle too long), and
// errSignedOut when it was ended.
func (a *Auth) linked(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, key string) (*exchanged, store.Stored, error) {
	st, err := a.store.Lookup(ctx, key)
	switch {
	case err != nil:
		a.counters.storeErrors.Add(1)
		return nil, st, err
	case st.Ended:
		return nil, st, errSignedOut
	case !st.Live():
		return nil, st, nil
	}
	token := a.sessionTokenFor(frontToken, sel, st.Nonce)
	loaded, s, err := a.load(store.Prefetched(ctx, key, st), token)
	if err != nil || s == nil {
		return nil, st, err
	}
	return &exchanged{token: token, session: s, ctx: loaded}, st, nil
}

// validateAndMint runs once per token however many requests wait on it.
func (a *Auth) validateAndMint(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, key string, c client) (flightResult, error) {
	// A request that missed the session just before another flight minted
	// it must not mint a second one: look again.
	res, seen, err := a.linked(ctx, frontToken, sel, key)
	if err != nil {
		return flightResult{}, err
	}
	if res != nil {
		return flightResult{token: res.token}, nil
	}

	release, err := a.upstreamTurn(ctx) // a limited client's validations go one at a time
	if err != nil {
		return flightResult{}, err
	}
	defer release()
	start := time.Now()
	id, err := a.cfg.Provider.Validate(ctx, frontToken)
	a.counters.upstream(time.Since(start), err != nil && !errors.Is(err, provider.ErrInvalidToken))
	if err != nil {
		if errors.Is(err, provider.ErrInvalidToken) {
			a.negative.add(key)
			a.cfg.Logger.Info("sessiongate: token rejected", "provider", a.cfg.Provider.Name(), "error", err)
		} else {
			a.cfg.Logger.Warn("sessiongate: provider unavailable", "provider", a.cfg.Provider.Name(), "error", err)
		}
		return flightResult{}, err
	}
	if id == nil || id.UserID == "" {
		return flightResult{}, &provider.UnavailableError{Provider: a.cfg.Provider.Name(), Reason: "validated a token without naming its user"}
	}
	token, err := a.mint(ctx, frontToken, sel, *id, c, seen)
	if errors.Is(err, store.ErrConflict) {
		// Another process minted (or ended) this token's session meanwhile.
		if res, _, err := a.linked(ctx, frontToken, sel, key); err != nil || res != nil {
			if err != nil {
				return flightResult{}, err
			}
			return flightResult{token: res.token}, nil
		}
		return flightResult{}, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if err != nil {
		return flightResult{}, err
	}
	return flightResult{token: token, minted: true}, nil
}

// mint creates a session for id, minted from frontToken, in place of what
// the store held at its key (seen).
func (a *Auth) mint(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, id provider.Identity, c client, seen store.Stored) (string, error) {
	if id.Provider == "" {
		id.Provider = a.cfg.Provider.Name()
	}
	now := a.cfg.Now()
	expires := now.Add(a.sm.Lifetime)
	if !id.Expiry.IsZero() && id.Expiry.Before(expires) {
		expires = id.Expiry
	}
	if !now.Before(expires) {
		return "", &provider.InvalidTokenError{Provider: id.Provider, Reason: "expired"}
	}
	nonce := newNonce()
	token := a.sessionTokenFor(frontToken, sel, nonce)
	s := &Session{
		Identity:  id,
		Created:   now,
		LastSeen:  now,
		Expires:   expires,
		ClientIP:  c.ip,
		UserAgent: c.userAgent,
		key:       store.KeyOf(sel),
	}
	s.ID = publicID(s.key)
	data, err := a.sm.Codec.Encode(expires, map[string]any{recordKey: encodeRecord(s)})
	if err != nil {
		return "", fmt.Errorf("sessiongate/middleware: encoding a session: %w", err)
	}
	err = a.store.Mint(ctx, store.Mint{
		Token:   token,
		Nonce:   nonce,
		Data:    data,
		Expires: expires,
		User:    indexKey(id),
		Replace: seen,
	})
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			a.counters.storeErrors.Add(1)
		}
		return "", err
	}
	a.counters.minted.Add(1)
	a.cfg.Logger.Info("sessiongate: session minted", "session", s.ID, "provider", id.Provider, "user", id.UserID, "expires", expires)
	return token, nil
}

// end ends sessions; each keeps the mark of an ended session until its
// frontend token expires, so a signed-out token cannot mint again.
func (a *Auth) end(ctx context.Context, why string, sessions ...*Session) error {
	ends := make([]store.End, len(sessions))
	for i, s := range sessions {
		until := s.Identity.Expiry
		if until.IsZero() {
			until = s.Expires
		}
		ends[i] = store.End{Key: s.key, User: indexKey(s.Identity), Until: until}
	}
	if err := a.store.End(ctx, ends...); err != nil {
		a.counters.storeErrors.Add(1)
		a.cfg.Logger.Error("sessiongate: ending sessions failed", "why", why, "error", err)
		return err
	}
	a.counters.ended.Add(int64(len(sessions)))
	for _, s := range sessions {
		a.cfg.Logger.Info("sessiongate: session ended", "why", why, "session", s.ID, "user", s.Identity.UserID)
	}
	return nil
}

// exchangeFailed answers a failed exchange as DESIGN.md's error table says.
func (a *Auth) exchangeFailed(w http.ResponseWriter, err error) {
	var ue *provider.UnavailableError
	switch {
	case errors.Is(err, provider.ErrInvalidToken):
		a.counters.rejected.Add(1)
		writeError(w, http.StatusUnauthorized, codeInvalidToken, "the token is invalid, expired or signed out", 0)
	case errors.Is(err, store.ErrUnavailable):
		a.storeUnavailable(w, err)
	case errors.As(err, &ue) && ue.RetryAfter > 0:
		writeError(w, http.StatusServiceUnavailable, codeProviderDown, "the identity provider is unavailable; retry later", ue.RetryAfter)
	default:
		writeError(w, http.StatusServiceUnavailable, codeProviderDown, "the identity provider is unavailable; retry later", a.cfg.RetryAfter)
	}
}

// client is what a session records of the client that minted it.
type client struct{ ip, userAgent string }

// maxUserAgent bounds the User-Agent a session stores.
const maxUserAgent = 512

func clientOf(r *http.Request, ip func(*http.Request) string) client {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return client{ip: ip(r), userAgent: ua}
}
