package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// Client is what a session records of the client that mints it.
type Client struct{ IP, UserAgent string }

// ErrSignedOut is the answer for a frontend token whose session was signed
// out: it cannot mint again until it expires.
var ErrSignedOut = &provider.InvalidTokenError{Provider: "sessiongate", Reason: "the token's session was signed out"}

// ErrExpiredMeanwhile is the answer for a frontend token the provider
// accepted but whose session expired before it could be kept (the token
// expired while it was validated, or a clock, Config.Now's or the store's,
// is ahead of the provider's): nothing was stored. It is not a guess.
var ErrExpiredMeanwhile = &provider.InvalidTokenError{Provider: "sessiongate", Reason: "expired during its exchange"}

// ErrRejectedRecently is the answer for a frontend token the negative
// cache holds.
var ErrRejectedRecently = &provider.InvalidTokenError{Provider: "sessiongate", Reason: "rejected recently"}

// IsGuess reports whether an exchange failed on a token never seen to be
// good: rejected upstream now, not a repeat of a recent rejection and not
// the token of a signed-out session.
func IsGuess(err error) bool {
	return errors.Is(err, provider.ErrInvalidToken) && err != ErrRejectedRecently && err != ErrSignedOut && err != ErrExpiredMeanwhile
}

// minted is what one shared exchange hands every waiter.
type minted struct {
	token string
	// stored is what the store holds for token: what the mint wrote, or
	// what was found there; each waiter loads the session from it,
	// without reading the store again.
	stored format.Stored
	fresh  bool
	// continued is the store key of the session the mint continued (and
	// ended), "" when it continued none.
	continued string
	// limited are the sessions the mint ended for MaxSessions.
	limited []*format.Session
}

// validateAndMint runs once per token however many requests wait on it.
// seen is what the store held at the token's key when the request that
// started this flight looked (and found no live session it opens).
func (e *Engine) validateAndMint(ctx context.Context, front string, sel format.Selector, c Client, cont *continuation, seen format.Stored) (minted, error) {
	if e.mintedSince(sel, seen) {
		// A request that missed the session just before another flight
		// minted it must not mint a second one (nor call the provider
		// again): look again.
		found, st, err := e.existing(ctx, front, sel)
		if err != nil {
			return minted{}, err
		}
		if found.Session != nil {
			return minted{token: found.Token, stored: st}, nil
		}
		seen = st
	}

	if e.cfg.Turn != nil {
		turn, cancel := context.WithTimeout(ctx, e.cfg.ExchangeTimeout)
		release, err := e.cfg.Turn(turn) // a limited client's validations go one at a time
		cancel()
		if err != nil {
			return minted{}, err
		}
		defer release()
	}
	// The validation and the mint get ExchangeTimeout of their own, from
	// the turn on.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ExchangeTimeout)
	defer cancel()
	uctx, o := e.begin(ctx, Event{Kind: KindUpstream, Provider: e.providerName()})
	id, err := e.validate(uctx, front)
	result := Valid
	if err != nil {
		if result = Why(err); result == Canceled {
			// The call runs detached from its clients: a cancellation is
			// the provider's own failure, not a client leaving.
			result = Unavailable
		}
	}
	e.finish(uctx, o, result, err)
	if err != nil {
		if errors.Is(err, provider.ErrInvalidToken) {
			e.negative.add(sel.Key())
		}
		return minted{}, err
	}
	if id == nil || id.UserID == "" {
		return minted{}, &provider.UnavailableError{Provider: e.providerName(), Reason: "validated a token without naming its user"}
	}
	if strings.Contains(id.Provider, ":") {
		// The ':' separates the provider from the user id in the user's
		// index (format.UserIndex): provider "a:b"'s user "c" would share
		// provider "a"'s user "b:c"'s, and its MaxSessions count. New
		// refuses such a Name, but an identity may name a provider of its
		// own. The same every time for this token: remembered as the
		// provider's own rejections are, and told at WARN, since it refuses
		// every sign-in of that provider.
		e.negative.add(sel.Key())
		e.cfg.Logger.Warn("sessiongate: the provider named, in a token's identity, a provider whose name holds a ':'; the token is refused", "provider", id.Provider)
		return minted{}, &provider.InvalidTokenError{Provider: e.providerName(), Reason: "the identity's provider name holds a ':'"}
	}
	token, stored, continued, limited, err := e.mint(ctx, front, sel, *id, c, seen, cont)
	switch {
	case errors.Is(err, backend.ErrExpired):
		return minted{}, ErrExpiredMeanwhile
	case errors.Is(err, backend.ErrSignedOut):
		// Another spelling of a credential that was signed out: refused
		// like the spelling that was, and remembered.
		e.negative.add(sel.Key())
		return minted{}, ErrSignedOut
	case errors.Is(err, backend.ErrConflict):
		// Another process minted (or ended) this token's session meanwhile.
		if found, st, err := e.existing(ctx, front, sel); err != nil || found.Session != nil {
			if err != nil {
				return minted{}, err
			}
			return minted{token: found.Token, stored: st}, nil
		}
		return minted{}, fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
	case err != nil:
		return minted{}, err
	}
	e.remember(token, stored)
	m := minted{token: token, stored: stored, fresh: true, limited: limited}
	if continued {
		m.continued = cont.key
	}
	return m, nil
}

// mint creates a session for id, minted from front, in place of what the
// store held at its key (seen). With cont, a live session of the same user
// that the request carried, the new session continues it as the same
// device (same public id, created time and values) while the store, in the
// same step, ends it; if it ended meanwhile (signed out, continued by a
// concurrent mint), the new session is a session of its own.
//
// With MaxSessions, the same store step ends the user's least recently
// used sessions beyond it; mint then marks them as signed out (their
// credentials, the tokens their devices used before) and returns them.
func (e *Engine) mint(ctx context.Context, front string, sel format.Selector, id provider.Identity, c Client, seen format.Stored, cont *continuation) (token string, stored format.Stored, continued bool, limited []*format.Session, err error) {
	if id.Provider == "" {
		id.Provider = e.providerName()
	}
	if id.Expiry.After(provider.MaxTime) {
		// A provider outside this module may not range-check: no later
		// arithmetic on the expiry may overflow.
		id.Expiry = provider.MaxTime
	}
	now := e.cfg.Now()
	if cont != nil && (!cont.sameUser(id) || !now.Before(cont.created.Add(e.cfg.Lifetime))) {
		cont = nil // another user, or a device past its absolute lifetime: a session of its own
	}
	for {
		var ended []backend.Entry
		token, stored, ended, err = e.mintOnce(ctx, front, sel, id, c, seen, cont, now)
		if errors.Is(err, backend.ErrNotContinued) {
			cont = nil
			continue
		}
		if err == nil && len(ended) > 0 {
			limited = e.endLimited(ctx, id, ended)
		}
		return token, stored, cont != nil && err == nil, limited, err
	}
}

// mintedSince reports whether this process minted, or loaded, a session
// at sel's key that seen (read before) does not show: seen may then be
// older than a mint that completed after it was read, and the key must
// be read again. The record cache remembers the last session of each
// key (remember puts every mint's); one that was evicted, or a mint by
// another process, is caught by the store's mint instead (it writes only
// over what was seen: a conflict), at the cost of a provider call.
func (e *Engine) mintedSince(sel format.Selector, seen format.Stored) bool {
	c := e.records.peek(sel)
	return c.s != nil && !bytes.Equal(c.s.Nonce, seen.Nonce)
}

// remember puts the session just minted (token, stored: what the store
// was given) in the record cache, so that its waiters decode nothing and
// mintedSince sees it even when no waiter is left to load it. Its
// decoding counts as a cache miss.
func (e *Engine) remember(token string, stored format.Stored) {
	e.Counters.CacheMisses.Add(1)
	if s, err := format.DecodeRecord(format.KeyOf(token), stored); err == nil {
		e.records.put(s, stored, token) // its values are the codec's own: they decode
	}
}

// endLimited completes the end of the sessions a mint for id ended for
// MaxSessions: the store marked their keys; this marks their credentials
// and the tokens their devices used before, as a sign-out does, and logs
// each. A failure here is logged: their keys stay marked until they would
// have expired, and the mint stands.
func (e *Engine) endLimited(ctx context.Context, id provider.Identity, ended []backend.Entry) []*format.Session {
	limited := make([]*format.Session, 0, len(ended))
	for _, en := range ended {
		s, err := format.DecodeRecord(en.Key, en.Stored)
		if err != nil {
			// An unreadable record: its key is marked; nothing else of it
			// is known.
			s = &format.Session{ID: format.PublicID(en.Key, en.Stored.Nonce), Key: en.Key, Nonce: en.Stored.Nonce, Credential: en.Stored.Credential,
				Identity: provider.Identity{UserID: id.UserID, Provider: id.Provider}}
		}
		limited = append(limited, s)
	}
	// e.end tells of each (an "ended" event, reason SessionLimit), as of
	// every session it ends.
	if err := e.end(ctx, SessionLimit, nil, limited...); err != nil {
		e.cfg.Logger.Warn("sessiongate: marking the sessions ended by the session limit failed; their keys stay marked", "user", id.UserID, "error", err)
	}
	return limited
}

// epoch is the earliest auth time a session keeps (1970-01-01 UTC).
var epoch = time.Unix(0, 0)

// iatSlack is how far before now a token's iat may be and still count as
// issued now: the provider's clock may be behind ours (a fresh sign-in
// must never look stale for ever), and iat is whole seconds. What iat
// guards against is a token kept unused for long, not for minutes.
const iatSlack = 5 * time.Minute

// mintOnce is one attempt of mint.
func (e *Engine) mintOnce(ctx context.Context, front string, sel format.Selector, id provider.Identity, c Client, seen format.Stored, cont *continuation, now time.Time) (string, format.Stored, []backend.Entry, error) {
	created := now
	if cont != nil {
		created = cont.created // the lifetime is absolute: counted from the device's first sign-in
	}
	// The user authenticated at the provider at the token's auth_time,
	// or, when it says nothing, just now, when the token is exchanged (a
	// frontend token is only ever minted once: a fresh one came from a
	// sign-in at the widget); never later than now, and a device signing
	// in again never goes back in time.
	// A provider outside this module may not range-check: an auth_time
	// before 1970 is kept as 1970, stale for any max age, so that no
	// arithmetic on it overflows into the future.
	//
	// Without auth_time, the token's iat bounds it: a token issued an
	// hour ago and exchanged now was not a sign-in now. And a token
	// exchanged again (its session idled out or expired, the key still
	// holding its record) keeps the authentication its first exchange
	// recorded.
	authTime := now
	switch {
	case !id.AuthTime.IsZero():
		if id.AuthTime.Before(now) {
			authTime = id.AuthTime
		}
	case !id.IssuedAt.IsZero() && id.IssuedAt.Before(now.Add(-iatSlack)):
		// Within iatSlack, iat is now: clocks differ, and iat is whole
		// seconds, so a token issued just now must not look stale.
		authTime = id.IssuedAt
	}
	if old, err := format.DecodeRecord(sel.Key(), seen); err == nil && old.AuthTime.Before(authTime) &&
		old.Identity.Provider == id.Provider && old.Identity.UserID == id.UserID {
		authTime = old.AuthTime
	}
	if authTime.Before(epoch) {
		authTime = epoch
	}
	if cont != nil && cont.authTime.After(authTime) {
		authTime = cont.authTime
	}
	expires := created.Add(e.cfg.Lifetime)
	if !id.Expiry.IsZero() && id.Expiry.Before(expires) {
		expires = id.Expiry
	}
	if !now.Before(expires) {
		return "", format.Stored{}, nil, ErrExpiredMeanwhile
	}
	nonce := format.NewNonce()
	token := e.cfg.Secret.Token(front, sel, nonce)
	s := &format.Session{
		Identity:   id,
		Created:    created,
		LastSeen:   now,
		AuthTime:   authTime,
		Expires:    expires,
		ClientIP:   c.IP,
		UserAgent:  c.UserAgent,
		Key:        sel.Key(),
		Nonce:      nonce,
		Credential: e.cfg.Secret.Credential(id.Provider, id.TokenID),
	}
	s.ID = format.PublicID(s.Key, nonce)
	values := map[string]any{}
	var continues *backend.Continued
	if cont != nil {
		s.ID, values = cont.id, cont.values
		continues = &backend.Continued{Key: cont.key, Nonce: cont.nonce}
		s.Preds = cont.preds
	}
	data, err := e.values.Codec.Encode(expires, values)
	if err != nil {
		return "", format.Stored{}, nil, fmt.Errorf("sessiongate: encoding a session: %w", err)
	}
	record := format.EncodeRecord(s)
	if len(record) > format.MaxRecordLen {
		return "", format.Stored{}, nil, &provider.InvalidTokenError{Provider: id.Provider, Reason: "the identity is too large to keep"}
	}
	var limit *backend.Limit
	if e.cfg.MaxSessions > 0 {
		limit = &backend.Limit{Max: e.cfg.MaxSessions}
	}
	wctx, o := e.begin(ctx, writeOf(WriteMint, s))
	err = e.cfg.Store.Mint(wctx, backend.NewSession{
		Token:      token,
		Nonce:      nonce,
		Credential: s.Credential,
		Mark:       e.markOf(s),
		Record:     record,
		Data:       data,
		Expires:    expires,
		User:       userIndex(s.Identity),
		Replace:    seen,
		Continues:  continues,
		Limit:      limit,
	})
	e.wrote(wctx, o, err)
	if err != nil {
		return "", format.Stored{}, nil, err
	}
	// What the store now holds: the session is loaded from it, not read
	// back.
	_, val, _ := format.Split(token)
	stored := format.Parse(format.Frame(val, nonce, s.Credential, record, data))
	ev := Event{Kind: KindMinted, Session: s.ID, User: id.UserID, Provider: id.Provider, UserAgent: c.UserAgent, IP: c.IP, Expires: expires}
	if cont != nil {
		e.Emit(ctx, Event{Kind: KindEnded, Session: cont.id, User: cont.user, Provider: cont.provider, Reason: Continued})
		ev.Reason = Continued
	}
	e.Emit(ctx, ev)
	if limit != nil {
		return token, stored, limit.Ended, nil
	}
	return token, stored, nil, nil
}

// validate asks the provider about token. A panic in the provider is
// this call's failure: an unavailable provider, logged once with its stack.
func (e *Engine) validate(ctx context.Context, token string) (_ *provider.Identity, err error) {
	defer e.recoverInto(&err, "provider "+e.providerName())
	return e.cfg.Provider.Validate(ctx, token)
}

// continuation is what a session that continues another keeps of it.
type continuation struct {
	provider, user string
	id             string
	created        time.Time
	authTime       time.Time
	values         map[string]any
	// key and nonce name the session continued; preds are the sessions
	// the new one continues: the continued one's, and itself.
	key   string
	nonce []byte
	preds []format.Predecessor
}

// continuation returns what a new session minted for this request keeps
// of current, the live session the request carried: a new frontend token
// of the same user and provider (a refreshed token, a second tab)
// continues that session as the same device, with a fresh session token.
// nil when there is no current session.
func (e *Engine) continuation(current *Loaded) *continuation {
	if current == nil {
		return nil
	}
	s := current.Session
	c := &continuation{provider: s.Identity.Provider, user: s.Identity.UserID, id: s.ID, created: s.Created, authTime: s.AuthTime, values: map[string]any{},
		key: s.Key, nonce: s.Nonce}
	// The new session continues s and what s continued, but for the
	// tokens that expired; the newest MaxPredecessors.
	now := e.cfg.Now()
	for _, p := range s.Preds {
		if now.Before(p.Until) && p.Key != s.Key {
			c.preds = append(c.preds, p)
		}
	}
	c.preds = append(c.preds, format.Predecessor{Key: s.Key, Credential: s.Credential, Until: e.markUntil(s)})
	if n := len(c.preds) - format.MaxPredecessors; n > 0 {
		c.preds = c.preds[n:]
	}
	if _, values, err := e.values.Codec.Decode(current.values); err == nil { // Load checked it decodes
		c.values = values
	}
	return c
}

// sameUser reports whether id is the user of the continued session.
func (c *continuation) sameUser(id provider.Identity) bool {
	return c.provider == id.Provider && c.user == id.UserID
}

// negativeCacheSize bounds the negative cache: a client sending endless
// distinct bad tokens cannot grow it past this many entries (the least
// recently used go first).
const negativeCacheSize = 10_000

// negativeCache remembers the store keys of frontend tokens the provider
// rejected, until a deadline read from the injected clock. Safe for
// concurrent use.
type negativeCache struct {
	ttl     time.Duration
	now     func() time.Time
	entries *lru.Cache[string, time.Time]
}

func newNegativeCache(ttl time.Duration, now func() time.Time) *negativeCache {
	entries, _ := lru.New[string, time.Time](negativeCacheSize) // errors only for a size <= 0
	return &negativeCache{ttl: ttl, now: now, entries: entries}
}

// rejected reports whether key was rejected less than ttl ago.
func (c *negativeCache) rejected(key string) bool {
	if c.ttl <= 0 {
		return false
	}
	until, ok := c.entries.Get(key)
	if ok && !c.now().Before(until) {
		c.entries.Remove(key)
		return false
	}
	return ok
}

// add remembers key as rejected. When the cache is full it first drops
// the expired entries, so that the least recently used of those still in
// force goes only when none has expired.
func (c *negativeCache) add(key string) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	if c.entries.Len() >= negativeCacheSize {
		for _, k := range c.entries.Keys() {
			if until, ok := c.entries.Peek(k); ok && !now.Before(until) {
				c.entries.Remove(k)
			}
		}
	}
	c.entries.Add(key, now.Add(c.ttl))
}
