package engine

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// Loaded is a live session loaded for a request; the zero Loaded (nil
// Session) is none.
type Loaded struct {
	// Session is the session; it is shared: do not modify it.
	Session *format.Session
	// Token is the session token that opens it.
	Token string
	// Minted is true when this exchange created the session.
	Minted bool
	// Continued is true when the exchange's mint continued the session the
	// request carried (Exchange's current), which then already ended.
	Continued bool
	// Limited are the sessions of the user that this exchange's mint
	// ended for MaxSessions (the least recently used), nil when none.
	Limited []*format.Session

	// values are the session's scs values as the store held them (the
	// Codec's bytes, which Load checked decode): RequestValues decodes
	// them for scs when a handler first uses them.
	values []byte
}

// Load loads the session that token opens: one store read, and no
// decoding when the stored record is the one decoded last time. A token
// with no live session gives nil and no error; the error is for a store
// that cannot answer (wrapping backend.ErrUnavailable).
func (e *Engine) Load(ctx context.Context, token string) (_ Loaded, err error) {
	defer e.recoverInto(&err, "store")
	sel, val, ok := format.Split(token)
	if !ok {
		return Loaded{}, nil
	}
	st, cached, now, err := e.lookup(ctx, sel)
	if err != nil {
		return Loaded{}, err
	}
	if !st.Live() || !cached.opens(st, token) && !format.Opens(st.Raw(), val) { // Stored.Opens, without decoding token again
		return Loaded{}, nil
	}
	return e.load(ctx, token, st, cached, now)
}

// lookup reads what the store holds at sel's key, with what the record
// cache holds for that key (zero when nothing): the cached session's Key
// names the key, so that reading a session seen before allocates no key.
// now is the clock's reading the read was judged at (backend.LookupAt),
// and the session is to be: a steady request reads the clock once.
func (e *Engine) lookup(ctx context.Context, sel format.Selector) (_ format.Stored, _ cachedRecord, now time.Time, _ error) {
	cached := e.records.peek(sel)
	var key string
	if cached.s != nil {
		key = cached.s.Key
	} else {
		key = sel.Key()
	}
	now = e.cfg.Now()
	var (
		st  format.Stored
		err error
	)
	if e.lookupAt != nil {
		st, err = e.lookupAt.LookupAt(ctx, key, now)
	} else {
		st, err = e.cfg.Store.Lookup(ctx, key)
	}
	if err != nil {
		e.storeFailed(ctx, Read, err)
	}
	return st, cached, now, err
}

// loadStored is Load for a session already read from the store (st, which
// token opens; Stored.Opens checked it): it decodes the record, unless the
// record cache has it, and checks that the session's scs values decode,
// without reading the store again.
func (e *Engine) loadStored(ctx context.Context, token string, st format.Stored) (Loaded, error) {
	sel, _, ok := format.Split(token)
	if !ok {
		return Loaded{}, nil
	}
	return e.load(ctx, token, st, e.records.peek(sel), e.cfg.Now())
}

// load is loadStored with what the record cache held for token's key
// (cached, zero when nothing), judged at now.
func (e *Engine) load(ctx context.Context, token string, st format.Stored, cached cachedRecord, now time.Time) (Loaded, error) {
	if !st.Live() {
		return Loaded{}, nil
	}
	s, valuesChecked := cached.match(st)
	if s != nil {
		e.Counters.CacheHits.Add(1)
	} else {
		e.Counters.CacheMisses.Add(1)
		var err error
		if s, err = format.DecodeRecord(format.KeyOf(token), st); err != nil {
			e.cfg.Logger.Warn("sessiongate: undecodable session record ignored")
			return Loaded{}, nil
		}
	}
	if !e.live(s, now) {
		e.ended(ctx, Expired, s)
		return Loaded{}, nil
	}
	if !valuesChecked {
		// The handlers' values are decoded for scs only when a handler
		// uses them (RequestValues), but a session whose values do not
		// decode is not a session of ours: checked once per version of
		// them, which the cache remembers.
		if _, _, err := e.values.Codec.Decode(st.Data); err != nil {
			e.cfg.Logger.Warn("sessiongate: undecodable session values ignored", "session", s.ID)
			return Loaded{}, nil
		}
	}
	if s != cached.s || cached.token != token || !valuesChecked && len(st.Data) <= maxCachedValues {
		e.records.put(s, st, token)
	}
	return Loaded{Session: s, Token: token, values: st.Data}, nil
}

// Exchange returns the session for front, a frontend token: the live one
// already minted from it (one store read), or a new one after the
// provider validated the token. Concurrent exchanges of one token share a
// single validation and mint, detached from any one caller's
// cancellation (ctx's values go with it); processes that share a store
// and a secret mint at most one session per token between them.
//
// client tells what the new session records of its client; it is called
// only when the token has no session yet (and is not a recent rejection).
// current is the live session the request carried, if any: a new session
// of the same user continues it (the same device signing in again), and a
// frontend token whose session it continued is answered with it, with no
// upstream call.
//
// Errors: provider.ErrInvalidToken (rejected, expired, signed out),
// backend.ErrUnavailable (the store), *provider.UnavailableError (the
// provider, or an exchange that did not finish within twice
// ExchangeTimeout), ctx's error, or Config.Turn's.
//
// An exchange is an operation (KindExchange) for the observer: the
// upstream call and the mint's store write run in the context its Begin
// returned; the handler runs in the request's own (ctx). sel is
// Selector(front), which the caller has already taken.
func (e *Engine) Exchange(ctx context.Context, front string, sel format.Selector, client func() Client, current *Loaded) (Loaded, error) {
	octx, o := e.begin(ctx, Event{Kind: KindExchange, Provider: e.providerName()})
	l, err := e.exchange(ctx, octx, front, sel, client, current)
	if err == nil && !l.Minted {
		s := l.Session
		e.Emit(octx, Event{Kind: KindExchanged, Session: s.ID, User: s.Identity.UserID, Provider: s.Identity.Provider})
	}
	e.finish(octx, o, outcome(l, err), err)
	return l, err
}

// exchange is Exchange; octx is the exchange's context for the observer.
func (e *Engine) exchange(ctx, octx context.Context, front string, sel format.Selector, client func() Client, current *Loaded) (_ Loaded, err error) {
	defer e.recoverInto(&err, "store")
	if current != nil && current.Session.Continues(sel.Key(), e.cfg.Now()) {
		// This token's session was continued by the one the request
		// carries (two tabs, a refreshed token): the same device, already
		// validated; no store read, no upstream call.
		return *current, nil
	}
	found, seen, err := e.existing(ctx, front, sel)
	if err != nil || found.Session != nil {
		return found, err
	}
	key := sel.Key()
	if e.negative.rejected(key) {
		return Loaded{}, ErrRejectedRecently
	}
	if e.cfg.Provider == nil {
		return Loaded{}, &provider.UnavailableError{Provider: "sessiongate", Reason: "no provider configured"}
	}

	c := client() // only for a token that may mint: the client is recorded in its session
	cont := e.continuation(current)
	ch := e.flights.DoChan(key, func() (_ any, err error) {
		// A panic in the store fails this exchange (and its waiters)
		// alone: singleflight would re-panic it on a goroutine of its own,
		// where nothing could recover it. (validate recovers the
		// provider's own.)
		defer e.recoverInto(&err, "store")
		return e.validateAndMint(context.WithoutCancel(octx), front, sel, c, cont, seen)
	})
	// A waiter waits for its turn (a limited client's) and then for the
	// exchange, each at most ExchangeTimeout, whatever the provider does
	// (ignores its context, never returns): then it fails, and the next
	// request with this token starts an exchange of its own.
	wait := time.NewTimer(2 * e.cfg.ExchangeTimeout)
	defer wait.Stop()
	var m minted
	select {
	case res := <-ch:
		if res.Err != nil {
			return Loaded{}, res.Err
		}
		m = res.Val.(minted)
	case <-ctx.Done():
		return Loaded{}, ctx.Err()
	case <-wait.C:
		e.flights.Forget(key)
		e.cfg.Logger.Warn("sessiongate: an exchange did not finish in time; the provider ignores its context?", "provider", e.providerName())
		return Loaded{}, &provider.UnavailableError{Provider: e.providerName(), Reason: "the exchange did not finish in time"}
	}

	// The flight hands back what the store holds for the token (what it
	// minted, or found): no second read.
	l, err := e.loadStored(ctx, m.token, m.stored)
	if err != nil {
		return Loaded{}, err
	}
	if l.Session == nil {
		// Gone between the mint and now: signed out elsewhere, or
		// replaced by a concurrent mint of another spelling of the same
		// credential (then the token is fine: retry).
		if st, err := e.cfg.Store.Lookup(ctx, key); err != nil || st.Ended {
			if err != nil {
				return Loaded{}, err
			}
			return Loaded{}, ErrSignedOut
		}
		return Loaded{}, &provider.UnavailableError{Provider: e.providerName(), Reason: "the session was replaced meanwhile by another spelling of the same credential", RetryAfter: time.Second}
	}
	// Requests that shared this exchange carried sessions of their own:
	// only the one whose session the mint continued has it ended already.
	l.Minted = m.fresh
	l.Limited = m.limited
	l.Continued = current != nil && m.continued != "" && m.continued == current.Session.Key
	return l, nil
}

// existing returns the live session minted from front (whose selector is
// sel), with what the store holds at its key; nil when there is none
// (never minted, expired, idle too long), and ErrSignedOut when it was
// ended.
func (e *Engine) existing(ctx context.Context, front string, sel format.Selector) (Loaded, format.Stored, error) {
	st, cached, now, err := e.lookup(ctx, sel)
	switch {
	case err != nil:
		return Loaded{}, st, err
	case st.Ended:
		return Loaded{}, st, ErrSignedOut
	case !st.Live():
		return Loaded{}, st, nil
	}
	// The session token is derived from the whole frontend token (a
	// second pass over it, after the selector's): the record cache keeps
	// the one derived for the stored session's nonce, so that a steady
	// request reads its frontend token once.
	token := cached.token
	if s, _ := cached.match(st); s == nil || !cached.opens(st, token) {
		token = e.cfg.Secret.Token(front, sel, st.Nonce)
		if !st.Opens(token) {
			return Loaded{}, st, nil
		}
	}
	l, err := e.load(ctx, token, st, cached, now)
	return l, st, err
}

// live reports whether s has neither expired nor been idle too long at now.
func (e *Engine) live(s *format.Session, now time.Time) bool {
	if !now.Before(s.Expires) {
		return false
	}
	return e.cfg.IdleTimeout <= 0 || now.Before(s.LastSeen.Add(e.cfg.IdleTimeout))
}

// Save writes, after the handler ran in ctx (a context whose scs values
// are v's), what changed in the request's session l: its activity when a
// keep-alive is due (the record), and the values the handler put (scs's
// Commit; none when no handler used them).
// Each write only ever updates a session that l's token still opens: a
// session signed out meanwhile is not written back. Each write is an
// operation (KindStoreWrite) for the observer, its failure in its end.
func (e *Engine) Save(ctx context.Context, l *Loaded, v *RequestValues) {
	var err error
	defer func() {
		if err != nil {
			e.cfg.Logger.Error("sessiongate: saving the session failed", "session", l.Session.ID, "error", err)
		}
	}()
	defer e.recoverInto(&err, "store")
	s := l.Session
	if e.cfg.IdleTimeout > 0 || e.cfg.MaxSessions > 0 { // the limit ends the least recently used
		if now := e.cfg.Now(); now.Sub(s.LastSeen) >= e.cfg.KeepAliveInterval {
			seen := *s
			seen.LastSeen = now
			wctx, o := e.begin(ctx, writeOf(WriteTouch, s))
			e.wrote(wctx, o, e.cfg.Store.Touch(wctx, l.Token, format.EncodeRecord(&seen)))
		}
	}
	if !v.saveable() || e.values.Status(ctx) != scs.Modified {
		return
	}
	// The handler's values are written even if its client has left; the
	// store's own deadline bounds the write. A session signed out, or
	// continued by a new sign-in of the same device, while the handler
	// ran gets none of them (backend.ErrNotLive, in the write's event).
	wctx, o := e.begin(context.WithoutCancel(ctx), writeOf(WriteValues, s))
	_, _, werr := e.values.Commit(wctx)
	e.wrote(wctx, o, werr)
}

// maxCachedRecords bounds the decoded-record cache: about a kilobyte each
// (a record, its decoded session, scs values up to maxCachedValues).
const maxCachedRecords = 8192

// maxCachedValues is the most bytes of scs values an entry of the record
// cache keeps, so that it holds at most maxCachedRecords × 5 KiB or so.
const maxCachedValues = 2 << 10

// recordCache keeps the last decoded session of each recently seen one,
// so that a steady-state request decodes nothing. An entry is used only
// while the stored record is byte for byte the one it was decoded from: a
// keep-alive or a new mint changes the bytes and the entry with them. It
// is keyed by the session's store key (which names the session, not the
// part of its token that opens it). An entry keeps the session token
// that opened it (the process holds the secret every token derives from
// anyway), so that a request carrying the frontend token alone derives
// only its selector: one pass over the token, not two. Reads do not move
// an entry (Peek: no exclusive lock per request); the oldest added goes
// first, and a session still in use is decoded and added again.
type recordCache struct {
	entries *lru.Cache[format.Selector, cachedRecord] // by selector: no key to encode
}

type cachedRecord struct {
	raw []byte
	s   *format.Session
	// values are the last scs values seen with the session that decoded
	// (nil: none yet).
	values []byte
	// token is the session token that opened s ("" when not known): the
	// one derived from its frontend token with s's nonce; verifier is the
	// stored verifier it was checked against.
	token    string
	verifier format.Verifier
}

func newRecordCache() *recordCache {
	entries, _ := lru.New[format.Selector, cachedRecord](maxCachedRecords)
	return &recordCache{entries: entries}
}

// peek returns the entry of the session sel names, zero when none.
func (c *recordCache) peek(sel format.Selector) cachedRecord {
	e, _ := c.entries.Peek(sel)
	return e
}

// match returns the session decoded from st, nil when e is not it, and
// whether st's scs values are known to decode. The record, the nonce and
// the credential must all be the ones it was decoded from: a session
// minted again from the same frontend token within the same millisecond
// has the same record bytes, but another nonce, and so another public id.
func (e cachedRecord) match(st format.Stored) (_ *format.Session, valuesChecked bool) {
	if e.s == nil || !bytes.Equal(e.raw, st.Record) || !bytes.Equal(e.s.Nonce, st.Nonce) || e.s.Credential != st.Credential {
		return nil, false
	}
	return e.s, e.values != nil && bytes.Equal(e.values, st.Data)
}

// put caches s, decoded from st, with st's scs values (which decode; it
// keeps both, which must not change), and token, the session token that
// opens st ("" when not known).
func (c *recordCache) put(s *format.Session, st format.Stored, token string) {
	key, ok := format.SelectorOf(s.Key)
	if !ok {
		return // never: every session's Key is a selector's
	}
	// Copies, so that an entry does not keep the whole stored value (the
	// scs values too) alive: the record is at most MaxRecordLen bytes,
	// and values over maxCachedValues are not kept (they are then checked
	// again on each request).
	e := cachedRecord{raw: bytes.Clone(st.Record), s: s}
	if len(st.Data) <= maxCachedValues {
		e.values = bytes.Clone(st.Data)
		if e.values == nil {
			e.values = []byte{} // known to decode, though empty
		}
	}
	if token != "" && len(st.Raw()) >= len(e.verifier) {
		// A copy: the token may be a slice of a request's Cookie header,
		// which the entry would keep whole.
		e.token = strings.Clone(token)
		copy(e.verifier[:], st.Raw())
	}
	c.entries.Add(key, e)
}

// opens reports whether token opens st because it is e's token and st
// still holds the verifier it was checked against (the record cache's
// shortcut of Stored.Opens, which hashes the validator): false means only
// that the shortcut does not apply. Both comparisons take constant time.
func (e cachedRecord) opens(st format.Stored, token string) bool {
	raw := st.Raw()
	return e.token != "" && st.Live() && len(raw) >= len(e.verifier) &&
		subtle.ConstantTimeCompare(raw[:len(e.verifier)], e.verifier[:])&subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) == 1
}

// recoverInto turns a panic into *err and logs it once with its stack:
// an ErrUnavailable of the provider, or of the store when where is
// "store". Use it deferred. The panic's value is logged only when it is a
// runtime error (a nil map, an index out of range): another value, a
// provider's own message, could hold a token.
func (e *Engine) recoverInto(err *error, where string) {
	v := recover()
	if v == nil {
		return
	}
	what := fmt.Sprintf("a %T", v)
	if re, ok := v.(runtime.Error); ok {
		what = re.Error()
	}
	e.cfg.Logger.Error("sessiongate: recovered from a panic; the request fails with 503", "in", where, "panic", what, "stack", string(debug.Stack()))
	if where == "store" {
		*err = fmt.Errorf("%w: the store panicked (see the log)", backend.ErrUnavailable)
		return
	}
	*err = &provider.UnavailableError{Provider: e.providerName(), Reason: "panicked (see the log)"}
}

// prefetchKey is the context key of a *prefetched.
type prefetchKey struct{}

// prefetched is the context in which RequestValues has scs load a
// session's values: they were read with the session (Loaded.values).
type prefetched struct {
	context.Context
	token  string
	values []byte
}

// Value returns p itself for prefetchKey, and its parent's values
// otherwise.
func (p *prefetched) Value(key any) any {
	if key == (prefetchKey{}) {
		return p
	}
	return p.Context.Value(key)
}

// valueStore is the store of the engine's scs manager: the backend, except
// that scs's Load of a session Load has read (and checked that its token
// opens) answers from that read, with no second one. Commits go
// to the backend's context-aware methods when it has them, as scs itself
// would call them.
type valueStore struct{ backend.Backend }

// FindCtx returns the scs values of the session Load read for token. Any
// other token, on a request with a session, is another session than the
// request's: scs looks one up only to merge it into the
// request's (MergeSession), which would hand one session's values to
// another and returns backend.ErrUnsupported before anything changes.
// Outside a request the engine loaded (scs's own LoadAndSave, which
// README warns against), nothing is found: whatever a client sends, scs
// gets no session and no error to answer with a 500.
func (v valueStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	p, ok := ctx.Value(prefetchKey{}).(*prefetched)
	switch {
	case ok && p.token == token:
		return p.values, true, nil
	case ok:
		return nil, false, backend.ErrUnsupported
	}
	return nil, false, nil
}

// CommitCtx commits the handlers' values under ctx (its values; Save
// detaches it from the request's cancellation): through the store's own
// CommitCtx when it has one, else its Commit.
func (v valueStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if c, ok := v.Backend.(interface {
		CommitCtx(context.Context, string, []byte, time.Time) error
	}); ok {
		return c.CommitCtx(ctx, token, b, expiry)
	}
	return v.Backend.Commit(token, b, expiry)
}

// DeleteCtx is the store's DeleteCtx when it has one, else its Delete
// (both return backend.ErrUnsupported for sessiongate's stores).
func (v valueStore) DeleteCtx(ctx context.Context, token string) error {
	if d, ok := v.Backend.(interface {
		DeleteCtx(context.Context, string) error
	}); ok {
		return d.DeleteCtx(ctx, token)
	}
	return v.Backend.Delete(token)
}

// AllCtx returns backend.ErrUnsupported, so that scs's Iterate fails with
// an error, not a panic: list a user's sessions with List.
func (valueStore) AllCtx(context.Context) (map[string][]byte, error) {
	return nil, backend.ErrUnsupported
}
