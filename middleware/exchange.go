package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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

// exchange returns the session for frontToken: the live one already minted
// from it (one link read and one session read), or a new one after the
// provider validated the token. Concurrent exchanges of one token share a
// single validation and mint, detached from any one client's cancellation.
func (a *Auth) exchange(r *http.Request, frontToken string) (*exchanged, error) {
	base := r.Context()
	key := a.tokenKey(frontToken)
	if res, err := a.linked(base, frontToken, key); err != nil || res != nil {
		return res, err
	}
	if a.negative.rejected(key) {
		return nil, &provider.InvalidTokenError{Provider: a.cfg.Provider.Name(), Reason: "rejected recently"}
	}

	client := clientOf(r, a.cfg.ClientIP)
	ch := a.flights.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(base), a.cfg.ExchangeTimeout)
		defer cancel()
		return a.validateAndMint(ctx, frontToken, key, client)
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

// linked returns the live session linked to a frontend token, nil when
// there is none (never minted, expired, idle too long, or sealed under
// another secret), and errSignedOut for a tombstone.
func (a *Auth) linked(ctx context.Context, frontToken, key string) (*exchanged, error) {
	link, found, err := a.store.Link(ctx, key)
	if err != nil || !found {
		return nil, err
	}
	if link[0] == linkTombstone {
		return nil, errSignedOut
	}
	token, err := a.unseal(frontToken, link)
	if err != nil {
		return nil, nil
	}
	loaded, s, err := a.load(ctx, token)
	if err != nil || s == nil {
		return nil, err
	}
	return &exchanged{token: token, session: s, ctx: loaded}, nil
}

// validateAndMint runs once per token however many requests wait on it.
func (a *Auth) validateAndMint(ctx context.Context, frontToken, key string, c client) (flightResult, error) {
	// A request that missed the link just before another flight minted
	// must not mint a second session: look again.
	if res, err := a.linked(ctx, frontToken, key); err != nil || res != nil {
		if err != nil {
			return flightResult{}, err
		}
		return flightResult{token: res.token}, nil
	}

	id, err := a.cfg.Provider.Validate(ctx, frontToken)
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
	token, err := a.mint(ctx, frontToken, key, *id, c)
	if err != nil {
		return flightResult{}, err
	}
	return flightResult{token: token, minted: true}, nil
}

// mint creates a session for id and links it to the frontend token.
func (a *Auth) mint(ctx context.Context, frontToken, key string, id provider.Identity, c client) (string, error) {
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
	token := newSessionToken()
	s := &Session{
		Identity:  id,
		Created:   now,
		LastSeen:  now,
		Expires:   expires,
		ClientIP:  c.ip,
		UserAgent: c.userAgent,
		key:       store.Key(token),
		tokenKey:  key,
	}
	s.ID = publicID(s.key)
	rec, err := encodeRecord(s)
	if err != nil {
		return "", &provider.UnavailableError{Provider: id.Provider, Reason: "identity cannot be stored", Err: err}
	}
	data, err := a.sm.Codec.Encode(expires, map[string]any{recordKey: rec})
	if err != nil {
		return "", fmt.Errorf("sessiongate/middleware: encoding a session: %w", err)
	}
	err = a.store.Mint(ctx, store.Mint{
		Key:     s.key,
		Data:    data,
		Expires: expires,
		User:    indexKey(id),
		LinkKey: key,
		Link:    a.seal(frontToken, token),
	})
	if err != nil {
		return "", err
	}
	a.cfg.Logger.Info("sessiongate: session minted", "session", s.ID, "provider", id.Provider, "user", id.UserID, "expires", expires)
	return token, nil
}

// end ends sessions and tombstones their frontend tokens until those
// expire, so a signed-out token cannot mint a new session.
func (a *Auth) end(ctx context.Context, why string, sessions ...*Session) error {
	ends := make([]store.End, len(sessions))
	for i, s := range sessions {
		until := s.Identity.Expiry
		if until.IsZero() {
			until = s.Expires
		}
		ends[i] = store.End{Key: s.key, User: indexKey(s.Identity), LinkKey: s.tokenKey, Tombstone: tombstone, TombstoneExpires: until}
	}
	if err := a.store.End(ctx, ends...); err != nil {
		a.cfg.Logger.Error("sessiongate: ending sessions failed", "why", why, "error", err)
		return err
	}
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
