package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
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
	// continued is true when the mint continued the request's session,
	// which then already ended (as one step with the mint).
	continued bool
}

// flightResult is what one shared exchange hands every waiter.
type flightResult struct {
	token  string
	minted bool
	// continued is the store key of the session the mint continued (and
	// ended), "" when it continued none.
	continued string
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
// current is the live session the request carried, if any (nil when
// none): a new session of the same user continues it (see continuation),
// and a frontend token whose session it continued is answered with it,
// with no upstream call.
func (a *Auth) exchange(r *http.Request, frontToken string, current *exchanged) (_ *exchanged, err error) {
	defer a.recoverInto(&err, "store")
	a.counters.exchanges.Add(1)
	base := r.Context()
	sel := a.selector(frontToken)
	key := store.KeyOf(sel)
	if current != nil && current.session.continues(key) {
		// This token's session was continued by the one the request
		// carries (two tabs, a refreshed token): the same device, already
		// validated; no store read, no upstream call.
		a.counters.reused.Add(1)
		return current, nil
	}
	res, _, err := a.linked(base, frontToken, sel, key)
	if err != nil || res != nil {
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
	cont := a.continuation(current)
	ch := a.flights.DoChan(key, func() (_ any, err error) {
		// A panic in the store fails this exchange (and its waiters)
		// alone: singleflight would re-panic it on a goroutine of its own,
		// where nothing could recover it. (validate recovers the
		// provider's own.)
		defer a.recoverInto(&err, "store")
		return a.validateAndMint(context.WithoutCancel(base), frontToken, sel, key, client, cont)
	})
	// A waiter waits for its turn (a limited client's) and then for the
	// exchange, each at most ExchangeTimeout, whatever the provider does
	// (ignores its context, never returns): then it answers 503, and the
	// next request with this token starts an exchange of its own.
	wait := time.NewTimer(2 * a.cfg.ExchangeTimeout)
	defer wait.Stop()
	var fr flightResult
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		fr = res.Val.(flightResult)
	case <-base.Done():
		return nil, base.Err()
	case <-wait.C:
		a.flights.Forget(key)
		a.cfg.Logger.Warn("sessiongate: an exchange did not finish in time; the provider ignores its context?", "provider", a.cfg.Provider.Name())
		return nil, &provider.UnavailableError{Provider: a.cfg.Provider.Name(), Reason: "the exchange did not finish in time"}
	}

	ctx, s, err := a.load(base, fr.token)
	if err != nil {
		return nil, err
	}
	if s == nil {
		// Gone between the mint and now: signed out elsewhere, or
		// replaced by a concurrent mint of another spelling of the same
		// credential (then the token is fine: retry).
		if st, err := a.store.Lookup(base, key); err != nil || st.Ended {
			if err != nil {
				return nil, err
			}
			return nil, errSignedOut
		}
		return nil, &provider.UnavailableError{Provider: a.cfg.Provider.Name(), Reason: "the session was replaced meanwhile by another spelling of the same credential", RetryAfter: time.Second}
	}
	// Requests that shared this exchange carried sessions of their own:
	// only the one whose session the mint continued has it ended already.
	continued := current != nil && fr.continued != "" && fr.continued == current.session.key
	return &exchanged{token: fr.token, session: s, ctx: ctx, minted: fr.minted, continued: continued}, nil
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
	if !st.Opens(token) {
		return nil, st, nil
	}
	loaded, s, err := a.loadStored(ctx, token, st)
	if err != nil || s == nil {
		return nil, st, err
	}
	return &exchanged{token: token, session: s, ctx: loaded}, st, nil
}

// validateAndMint runs once per token however many requests wait on it.
func (a *Auth) validateAndMint(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, key string, c client, cont *continued) (flightResult, error) {
	// A request that missed the session just before another flight minted
	// it must not mint a second one: look again.
	res, seen, err := a.linked(ctx, frontToken, sel, key)
	if err != nil {
		return flightResult{}, err
	}
	if res != nil {
		return flightResult{token: res.token}, nil
	}

	turn, cancel := context.WithTimeout(ctx, a.cfg.ExchangeTimeout)
	release, err := a.upstreamTurn(turn) // a limited client's validations go one at a time
	cancel()
	if err != nil {
		return flightResult{}, err
	}
	defer release()
	// The validation and the mint get ExchangeTimeout of their own, from
	// the turn on.
	ctx, cancel = context.WithTimeout(ctx, a.cfg.ExchangeTimeout)
	defer cancel()
	start := time.Now()
	id, err := a.validate(ctx, frontToken)
	a.counters.upstream(time.Since(start), err != nil && !errors.Is(err, provider.ErrInvalidToken))
	if err != nil {
		if errors.Is(err, provider.ErrInvalidToken) {
			a.negative.add(key)
			a.cfg.Logger.Info("sessiongate: token rejected", "provider", a.cfg.Provider.Name(), "error", err)
		} else {
			if n, ok := a.providerDownLog.due(a.cfg.Now()); ok {
				a.cfg.Logger.Warn("sessiongate: provider unavailable; logged at most once a second", "provider", a.cfg.Provider.Name(), "error", err, "since_last_logged", n)
			}
		}
		return flightResult{}, err
	}
	if id == nil || id.UserID == "" {
		return flightResult{}, &provider.UnavailableError{Provider: a.cfg.Provider.Name(), Reason: "validated a token without naming its user"}
	}
	token, continued, err := a.mint(ctx, frontToken, sel, *id, c, seen, cont)
	var continuedKey string
	if continued {
		continuedKey = cont.key
	}
	if errors.Is(err, store.ErrSignedOut) {
		// Another spelling of a credential that was signed out: refused
		// like the spelling that was, and remembered.
		a.negative.add(key)
		return flightResult{}, errSignedOut
	}
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
	return flightResult{token: token, minted: true, continued: continuedKey}, nil
}

// mint creates a session for id, minted from frontToken, in place of what
// the store held at its key (seen). With cont, a live session of the same
// user that the request carried, the new session continues it as the same
// device (same public id, created time and values) while the store, in
// the same step, ends it; if it ended meanwhile (signed out, continued by
// a concurrent mint), the new session is a session of its own.
func (a *Auth) mint(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, id provider.Identity, c client, seen store.Stored, cont *continued) (token string, continued bool, err error) {
	if id.Provider == "" {
		id.Provider = a.cfg.Provider.Name()
	}
	if id.Expiry.After(provider.MaxTime) {
		// A provider outside this module may not range-check: no later
		// arithmetic on the expiry may overflow.
		id.Expiry = provider.MaxTime
	}
	now := a.cfg.Now()
	if cont != nil && (!cont.sameUser(id) || !now.Before(cont.created.Add(a.sm.Lifetime))) {
		cont = nil // another user, or a device past its absolute lifetime: a session of its own
	}
	for {
		token, err = a.mintOnce(ctx, frontToken, sel, id, c, seen, cont, now)
		if errors.Is(err, store.ErrNotContinued) {
			cont = nil
			continue
		}
		return token, cont != nil && err == nil, err
	}
}

// mintOnce is one attempt of mint.
func (a *Auth) mintOnce(ctx context.Context, frontToken string, sel [store.SelectorLen]byte, id provider.Identity, c client, seen store.Stored, cont *continued, now time.Time) (string, error) {
	created := now
	if cont != nil {
		created = cont.created // the lifetime is absolute: counted from the device's first sign-in
	}
	expires := created.Add(a.sm.Lifetime)
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
		Created:   created,
		LastSeen:  now,
		Expires:   expires,
		ClientIP:  c.ip,
		UserAgent: c.userAgent,
		key:       store.KeyOf(sel),
		nonce:     nonce,
		cred:      a.credential(id),
	}
	s.ID = publicID(s.key, nonce)
	values := map[string]any{}
	var continues *store.Continue
	if cont != nil {
		s.ID, values = cont.id, cont.values
		continues = &store.Continue{Key: cont.key, Nonce: cont.nonce}
		s.preds = cont.preds
	}
	data, err := a.sm.Codec.Encode(expires, values)
	if err != nil {
		return "", fmt.Errorf("sessiongate/middleware: encoding a session: %w", err)
	}
	record := encodeRecord(s)
	if len(record) > store.MaxRecordLen {
		return "", &provider.InvalidTokenError{Provider: id.Provider, Reason: "the identity is too large to keep"}
	}
	err = a.store.Mint(ctx, store.Mint{
		Token:      token,
		Nonce:      nonce,
		Credential: s.cred,
		Mark:       a.markKey(s),
		Record:     record,
		Data:       data,
		Expires:    expires,
		User:       indexKey(id),
		Replace:    seen,
		Continues:  continues,
	})
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			a.counters.storeErrors.Add(1)
		}
		return "", err
	}
	a.counters.minted.Add(1)
	a.cfg.Logger.Info("sessiongate: session minted", "session", s.ID, "provider", id.Provider, "user", id.UserID, "expires", expires, "continued", cont != nil)
	return token, nil
}

// validate asks the provider about token. A panic in the provider is
// this call's failure: an unavailable provider, logged once with its stack.
func (a *Auth) validate(ctx context.Context, token string) (_ *provider.Identity, err error) {
	defer a.recoverInto(&err, "provider "+a.cfg.Provider.Name())
	return a.cfg.Provider.Validate(ctx, token)
}

// recoverInto turns a panic into *err and logs it once with its stack:
// an ErrUnavailable of the provider, or of the store when where is
// "store". Use it deferred. The panic's value is logged only when it is a
// runtime error (a nil map, an index out of range): another value, a
// provider's own message, could hold a token.
func (a *Auth) recoverInto(err *error, where string) {
	v := recover()
	if v == nil {
		return
	}
	what := fmt.Sprintf("a %T", v)
	if re, ok := v.(runtime.Error); ok {
		what = re.Error()
	}
	a.cfg.Logger.Error("sessiongate: recovered from a panic; the request fails with 503", "in", where, "panic", what, "stack", string(debug.Stack()))
	if where == "store" {
		*err = fmt.Errorf("%w: the store panicked (see the log)", store.ErrUnavailable)
		return
	}
	*err = &provider.UnavailableError{Provider: a.cfg.Provider.Name(), Reason: "panicked (see the log)"}
}

// continued is what a session that continues another keeps of it.
type continued struct {
	provider, user string
	id             string
	created        time.Time
	values         map[string]any
	// key and nonce name the session continued; preds are the sessions
	// the new one continues: the continued one's, and itself.
	key   string
	nonce []byte
	preds []predecessor
}

// continuation returns what a new session minted for this request keeps
// of current, the live session the request carried: a new frontend token
// of the same user and provider (a refreshed token, a second tab) continues
// that session as the same device, with a fresh session token. nil when
// there is no current session.
func (a *Auth) continuation(current *exchanged) *continued {
	if current == nil {
		return nil
	}
	s := current.session
	c := &continued{provider: s.Identity.Provider, user: s.Identity.UserID, id: s.ID, created: s.Created, values: map[string]any{},
		key: s.key, nonce: s.nonce}
	// The new session continues s and what s continued, but for the
	// tokens that expired; the newest maxPredecessors.
	now := a.cfg.Now()
	for _, p := range s.preds {
		if now.Before(p.until) && p.key != s.key {
			c.preds = append(c.preds, p)
		}
	}
	c.preds = append(c.preds, predecessor{key: s.key, cred: s.cred, until: a.markUntil(s)})
	if n := len(c.preds) - maxPredecessors; n > 0 {
		c.preds = c.preds[n:]
	}
	for _, k := range a.sm.Keys(current.ctx) {
		c.values[k] = a.sm.Get(current.ctx, k)
	}
	return c
}

// sameUser reports whether id is the user of the continued session.
func (c *continued) sameUser(id provider.Identity) bool {
	return c.provider == id.Provider && c.user == id.UserID
}

// credential returns the credential id of a session minted for id: a keyed
// hash of the provider's TokenID, zero when the provider gave none (the
// frontend token itself then is the credential, and the session's key
// already stands for it).
func (a *Auth) credential(id provider.Identity) (c [store.CredentialLen]byte) {
	if id.TokenID == "" {
		return c
	}
	sum := a.keyed("sessiongate credential", id.Provider+"\x00"+id.TokenID, nil)
	return [store.CredentialLen]byte(sum[:store.CredentialLen])
}

// markKey returns the store key of the sign-out mark of s's credential,
// "" when s has no credential id. It is derived from the user and the
// credential id, both of which s's record and frame keep, so that ending
// any session of the credential marks every spelling of it.
func (a *Auth) markKey(s *Session) string {
	return a.credentialMark(s.Identity, s.cred)
}

// credentialMark is markKey for the credential cred of id's user.
func (a *Auth) credentialMark(id provider.Identity, cred [store.CredentialLen]byte) string {
	if cred == ([store.CredentialLen]byte{}) {
		return ""
	}
	sum := a.keyed("sessiongate credential mark", indexKey(id), cred[:])
	return store.KeyOf([store.SelectorLen]byte(sum[:store.SelectorLen]))
}

// endReason says why sessions end. Only a sign-out or a revocation marks
// the frontend token (and credential) a session was minted from; a session
// replaced by another leaves no mark.
type endReason string

const (
	endSignedOut       endReason = "signed out"
	endSignedOutAll    endReason = "signed out everywhere"
	endSignedOutOthers endReason = "signed out elsewhere"
	endRevoked         endReason = "revoked"
	endUserRevoked     endReason = "user revoked"
	endUpstreamRevoked endReason = "upstream session revoked"
	endReplaced        endReason = "replaced"
)

// end ends sessions, signed out or revoked: each keeps the mark of an
// ended session on its key (and its credential's mark) until its frontend
// token expires (see markUntil), so a signed-out token cannot mint again.
// The write runs detached from ctx's cancellation (a client that leaves
// does not undo its sign-out), bounded by ExchangeTimeout.
func (a *Auth) end(ctx context.Context, why endReason, sessions ...*Session) (err error) {
	ends := make([]store.End, 0, len(sessions))
	for _, s := range sessions {
		ends = append(ends, store.End{Key: s.key, User: indexKey(s.Identity), Until: a.markUntil(s), Mark: a.markKey(s)})
		// The tokens the device used before, whose sessions this one
		// continues, are signed out with it.
		for _, p := range s.preds {
			ends = append(ends, store.End{Key: p.key, Until: p.until, Mark: a.credentialMark(s.Identity, p.cred)})
		}
	}
	return a.endAll(ctx, why, ends, sessions)
}

// replace ends old, replaced by another session that does not continue
// it (another user's sign-in on the same device, or a session the token
// already had): without a sign-out mark, so old's token may sign in
// again, and only if old is still the session it was (a concurrent
// sign-out's mark stays). A continued session is ended by its mint.
func (a *Auth) replace(ctx context.Context, old *Session) error {
	e := store.End{Key: old.key, User: indexKey(old.Identity), Until: a.markUntil(old), Replaced: true, Nonce: old.nonce}
	return a.endAll(ctx, endReplaced, []store.End{e}, []*Session{old})
}

// markUntil is how long a session's marks last: until its frontend token
// expires (Identity.Expiry, the provider's exp plus its leeway). A
// provider that says nothing of the expiry gets the longest the session
// could have lived from now: sm.Lifetime.
func (a *Auth) markUntil(s *Session) time.Time {
	if !s.Identity.Expiry.IsZero() {
		return s.Identity.Expiry
	}
	if until := a.cfg.Now().Add(a.sm.Lifetime); until.After(s.Expires) {
		return until
	}
	return s.Expires
}

// endAll writes ends, the ends of sessions, detached from ctx's
// cancellation, and logs and counts them.
func (a *Auth) endAll(ctx context.Context, why endReason, ends []store.End, sessions []*Session) (err error) {
	defer a.recoverInto(&err, "store")
	ctx, cancel := a.detached(ctx)
	defer cancel()
	if err = a.store.End(ctx, ends...); err != nil {
		a.counters.storeErrors.Add(1)
		a.cfg.Logger.Error("sessiongate: ending sessions failed", "why", string(why), "error", err)
		return err
	}
	a.counters.ended.Add(int64(len(sessions)))
	for _, s := range sessions {
		a.cfg.Logger.Info("sessiongate: session ended", "why", string(why), "session", s.ID, "user", s.Identity.UserID)
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
