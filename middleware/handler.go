package middleware

import (
	"context"
	"errors"
	"iter"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/internal/guesslimit"
	"github.com/sessiongate/sessiongate/provider"
)

// Handler is the middleware: mount it on a router (r.Use(auth.Handler)).
// For each request it
//
//  1. reads the session tokens (session header, then session cookies: up
//     to four well-formed ones, so that a stale or planted cookie never
//     hides a live one) and the frontend token (TokenHeader, then
//     TokenCookie);
//  2. reuses the first live session among them when the request carries
//     no frontend token or the very token it was minted from: one store
//     read, no upstream call, no write;
//  3. otherwise exchanges the frontend token: a session already minted from
//     it is reused; else the provider validates it once (concurrent
//     requests share one call) and a fresh session is minted, replacing any
//     session the request carried. The session's token is handed out
//     (cookie and session header) when it is new to the client, except to
//     a client that sent the frontend token in TokenHeader alone: such a
//     client keeps no session token, and gets it from the mint only (and
//     from the explicit exchange of Routes);
//  4. calls next with the session in the context (SessionFrom, UserFrom),
//     or without one when the request had no live credentials. Either way
//     the scs API works in next (Values): without a session its reads
//     give zero values and its writes are dropped.
//
// It answers itself only when the request presented credentials it cannot
// accept: 401 invalid_token for a malformed or rejected frontend token
// (malformed ones never reach the provider), 503 provider_unavailable or
// session_store_unavailable with Retry-After when an exchange cannot be
// done, 403 for a cross-origin unsafe request authenticated by a cookie,
// and 429 rate_limited for a client whose credentials keep failing (see
// Config.GuessBurst; a working credential is never refused). When the
// store cannot load a session, next runs without one and RequireSession
// answers 503.
//
// A session cookie that opens nothing is cleared, unless the request
// carried another cookie of that name that was not tried (a clearing
// Set-Cookie could delete that one). A response that sets or clears the
// session is never cached: it carries Cache-Control: no-store and Vary:
// Cookie, Authorization, whatever next wrote. Mounting Handler twice is
// harmless.
func (a *Auth) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stateFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		a.respond(w, r, next, a.resolve(r))
	})
}

// outcome is what resolve decided for one request; respond carries it out.
type outcome struct {
	// refusal, when status is set, answers the request without next.
	status  int
	code    string
	message string
	// retryAfter is the refusal's Retry-After (0: none).
	retryAfter time.Duration
	// err is the error behind a refusal or behind a session that could
	// not be loaded (requestState.err), for the log.
	err error

	// session is the request's live session (zero: none); reused is true
	// when it is the session the request carried, served as it was (an
	// exchange counts its own), handOut when its token is new to the
	// client and goes to it (see resolve), withheld when it is new to the
	// client but is not sent (the explicit exchange sends it).
	session  engine.Loaded
	reused   bool
	handOut  bool
	withheld bool
	// clear tells the browser to drop its session cookie.
	clear bool
}

// The refusals resolve can decide on.
var (
	crossOrigin = outcome{status: http.StatusForbidden, code: codeCrossOrigin, message: "cross-origin request refused"}
	malformed   = outcome{status: http.StatusUnauthorized, code: codeInvalidToken, message: "the token is malformed"}
)

// resolve decides what the request gets: which credentials it carries,
// whether its client is limited, and the session it loads or exchanges
// for. It writes nothing to the response; it asks the engine and the
// limiter, which tell of their own work (events).
func (a *Auth) resolve(r *http.Request) outcome {
	ctx := r.Context()
	candidates := a.sessionCandidates(r)
	front, hasFront, frontFromCookie := a.frontendToken(r)
	if candidates.n == 0 && !hasFront {
		return outcome{}
	}
	// The frontend token's selector is its one pass over the token. Its
	// syntax is checked before anything else reads it (the store, the
	// provider), unless the selector is known (Engine.Known): a token
	// whose session this process has seen passed the check when it
	// minted, and a steady request need not read it twice.
	var sel format.Selector
	if hasFront {
		if len(front) == 0 || len(front) > provider.MaxTokenSize {
			a.failed(r, 1)
			return malformed
		}
		sel = a.engine.Selector(front)
		if !a.engine.Known(sel) && !provider.ValidSyntax(front) {
			a.failed(r, 1)
			return malformed
		}
	}

	// The first live session among the candidates is the request's.
	var (
		current    engine.Loaded
		fromCookie bool
		dead       int
	)
	for i := range candidates.n {
		l, err := a.engine.Load(ctx, candidates.token[i])
		if err != nil {
			if hasFront {
				return a.failure(err)
			}
			return outcome{err: err}
		}
		if l.Session != nil {
			current, fromCookie = l, candidates.fromCookie[i]
			break
		}
		dead++
	}

	if current.Session != nil && (!hasFront || sel.Names(current.Session.Key) ||
		frontFromCookie && a.mintedFromTokenCookie(r, current.Session.Key)) {
		if (fromCookie || frontFromCookie) && a.cfg.CrossOrigin.Check(r) != nil {
			return crossOrigin
		}
		return outcome{session: current, reused: true}
	}
	if !hasFront {
		// Session tokens that open nothing: guesses, or sessions that
		// ended or expired. A browser is told to drop the cookie, if that
		// cannot delete one that was not tried. A limited client's dead
		// cookies get 429 (and are cleared). A dead session header gets
		// its usual answer: nothing can clear it, so a 429 would keep the
		// client retrying it instead of signing in again.
		o := outcome{clear: candidates.clearable()}
		if wait := a.failed(r, dead); wait > 0 && !candidates.fromHeader() {
			o.status, o.code, o.message, o.retryAfter = http.StatusTooManyRequests, codeRateLimited, messageRateLimited, wait
		}
		return o
	}

	if frontFromCookie && a.cfg.CrossOrigin.Check(r) != nil {
		return crossOrigin
	}
	if a.guesses.Active() {
		if ip := a.cfg.ClientIP(r); a.guesses.Wait(ip) > 0 {
			// A limited client's new tokens are validated one at a
			// time; its existing sessions are not held up.
			ctx = a.guesses.Queued(ctx, ip)
		}
	}
	var carried *engine.Loaded
	if current.Session != nil {
		carried = &current
	}
	l, err := a.engine.Exchange(ctx, front, sel, func() engine.Client { return clientOf(r, a.cfg.ClientIP) }, carried)
	if err != nil {
		if engine.IsGuess(err) {
			a.failed(r, 1)
		}
		return a.failure(err)
	}
	if current.Session != nil && current.Session.Key != l.Session.Key && !l.Continued {
		a.engine.Replace(ctx, current.Session)
	}
	// The session token goes to the client when it is new to it and the
	// client keeps one: on a mint (every request that shared it
	// included), to a client that carried a session cookie or header (not
	// this session's), and to a browser that sent its frontend token as a
	// cookie. A client that sends its frontend token in the header alone,
	// and no session token, keeps neither: it is answered from the
	// token's session on each request, and re-sending the cookie and the
	// session header every time would be work for nothing on both sides
	// (the explicit exchange, POST /session, hands them out all the same).
	o := outcome{session: l}
	if l.Token != current.Token {
		o.handOut = l.Minted || candidates.n > 0 || candidates.dropped || frontFromCookie
		o.withheld = !o.handOut
	}
	return o
}

// failure is the refusal for an exchange or a load that failed with err,
// as DESIGN.md's error table says.
func (a *Auth) failure(err error) outcome {
	var ue *provider.UnavailableError
	switch {
	case errors.Is(err, guesslimit.ErrNoTurn):
		return outcome{status: http.StatusTooManyRequests, code: codeRateLimited, message: messageRateLimited, retryAfter: a.cfg.GuessInterval}
	case errors.Is(err, provider.ErrInvalidToken):
		return outcome{status: http.StatusUnauthorized, code: codeInvalidToken, message: "the token is invalid, expired or signed out", err: err}
	case errors.Is(err, backend.ErrUnavailable):
		return outcome{status: http.StatusServiceUnavailable, code: codeStoreDown, message: messageStoreDown, retryAfter: a.cfg.RetryAfter, err: err}
	case errors.As(err, &ue) && ue.RetryAfter > 0:
		return outcome{status: http.StatusServiceUnavailable, code: codeProviderDown, message: messageProviderDown, retryAfter: ue.RetryAfter, err: err}
	default:
		return outcome{status: http.StatusServiceUnavailable, code: codeProviderDown, message: messageProviderDown, retryAfter: a.cfg.RetryAfter, err: err}
	}
}

// respond carries out o: the refusal, or next with the session, and the
// cookie, headers and events that go with it, all here.
func (a *Auth) respond(w http.ResponseWriter, r *http.Request, next http.Handler, o outcome) {
	switch {
	case o.status == 0:
	case o.code == codeInvalidToken:
		why := engine.Malformed // o.err nil: the engine never saw it
		if o.err != nil {
			why = engine.Why(o.err)
		}
		a.emit(r, engine.Event{Kind: engine.KindRejected, Reason: why, Err: o.err})
	case o.code == codeCrossOrigin:
		a.emit(r, engine.Event{Kind: engine.KindRejected, Reason: engine.CrossOrigin})
	case o.code == codeRateLimited:
		a.emit(r, engine.Event{Kind: engine.KindRateLimited})
	case o.code == codeStoreDown:
		a.storeUnavailable(w, o.err)
		return
	}
	if o.clear {
		a.clearSession(w)
	}
	if o.status != 0 {
		writeError(w, o.status, o.code, o.message, o.retryAfter)
		return
	}
	if o.reused {
		s := o.session.Session
		a.emit(r, engine.Event{Kind: engine.KindReused, Session: s.ID, User: s.Identity.UserID, Provider: s.Identity.Provider})
	}
	if o.handOut {
		a.writeSession(w, o.session.Token, o.session.Session)
	}
	// A bearer-only client that keeps no session token is not sent one
	// (withheld), but its answer is personal all the same: with the
	// token in Authorization, shared caches store it only when the app
	// says so (RFC 9111, section 3.5); with a token header of another
	// name, nothing would stop them, so the answer says no-store and
	// Vary, as an answer handing out the session does.
	if o.clear || o.handOut || o.withheld && !a.bearer {
		w = &noStoreWriter{ResponseWriter: w, a: a}
	}
	a.serve(w, r, next, &requestState{loaded: o.session, err: o.err, withheld: o.withheld})
}

// serve runs next with the request's state, then saves what changed:
// values the handler put in the session, and its activity when a
// keep-alive is due (engine.Save).
//
// Without a session, next still gets an scs session, empty and never
// saved: the scs API works in every handler behind the middleware (reads
// give zero values, writes are dropped and set no cookie).
func (a *Auth) serve(w http.ResponseWriter, r *http.Request, next http.Handler, st *requestState) {
	st.Context = r.Context()
	st.values.Init(a.engine, st.Context, &st.loaded)
	next.ServeHTTP(w, r.WithContext(st))
	if nw, ok := w.(*noStoreWriter); ok {
		nw.seal() // nothing was written: the server writes this header
	}
	if st.loaded.Session != nil {
		a.engine.Save(st, &st.loaded, &st.values)
	}
}

// failed records n failed credentials of r's client and returns how long
// the client was already limited for before them (0 when it was not). The
// failure that starts a lockout is logged, once per lockout.
func (a *Auth) failed(r *http.Request, n int) (wait time.Duration) {
	if a.guesses == nil || n <= 0 {
		return 0
	}
	ip := a.cfg.ClientIP(r)
	wait = a.guesses.Wait(ip)
	if a.guesses.Failed(ip, n) {
		a.emit(r, engine.Event{Kind: engine.KindClientLimited, IP: guesslimit.ClientKey(ip)})
	}
	return wait
}

// emit tells of what the middleware did for r, through the engine's one
// hook; the provider is Config.Provider's when ev names none.
func (a *Auth) emit(r *http.Request, ev engine.Event) {
	if ev.Provider == "" {
		ev.Provider = a.providerName
	}
	a.engine.Emit(r.Context(), ev)
}

// stateKey is the context key of a request's *requestState.
var stateKey = &struct{ name string }{"sessiongate state"}

// requestState is what the middleware decided for one request. It is
// also the request's context (its parent's, plus itself under stateKey,
// plus the scs session of values), so that adding it costs one
// allocation.
type requestState struct {
	context.Context

	// loaded is the request's live session, zero when it has none.
	loaded engine.Loaded
	// values is the request's scs session, loaded on first use.
	values engine.RequestValues
	// err is why the session could not be loaded (the store was down),
	// for RequireSession to answer 503 rather than 401.
	err error
	// withheld is true when the session's token is new to the client
	// but was not handed out (see resolve): the explicit exchange sends
	// it.
	withheld bool
	// public is the session as SessionFrom hands it out, made on first
	// use.
	public atomic.Pointer[Session]
}

// Value returns st for stateKey, the request's scs session data for
// scs's key, and its parent's values otherwise.
func (st *requestState) Value(key any) any {
	if key == stateKey {
		return st
	}
	if v, ok := st.values.Value(key); ok {
		return v
	}
	return st.Context.Value(key)
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey).(*requestState)
	return st
}

// Reading credentials.

// maxSessionCandidates bounds how many session tokens one request may have
// looked up (one store read each). A browser holds one session cookie per
// (name, domain, path): a stale tab's, a sibling subdomain's and this
// site's together are at most a few.
const maxSessionCandidates = 4

// sessionCandidates are the well-formed session tokens a request carries,
// distinct, in the order they are tried: the session header's values,
// then the session cookies' in the order the browser sent them (longest
// path first). A dead or junk one never hides a live one: each is tried
// until one opens a live session.
type sessionCandidates struct {
	token      [maxSessionCandidates]string
	fromCookie [maxSessionCandidates]bool
	n          int
	// cookies counts well-formed session cookies, duplicates included.
	cookies int
	// dropped is true when well-formed tokens past maxSessionCandidates
	// were left untried: one of them may be live.
	dropped bool
}

func (c *sessionCandidates) add(token string, fromCookie bool) {
	for i := range c.n {
		if c.token[i] == token {
			c.fromCookie[i] = c.fromCookie[i] || fromCookie
			return
		}
	}
	if c.n == maxSessionCandidates {
		c.dropped = true
		return
	}
	c.token[c.n], c.fromCookie[c.n] = token, fromCookie
	c.n++
}

// clearable reports whether the session cookie may be cleared once every
// candidate turned out dead: a clearing Set-Cookie deletes the cookie the
// browser holds under this name, path and domain, which may be any of the
// ones it sent, so it is safe only when all of them were tried. Junk
// (malformed) values alone are left alone, as they always were.
func (c *sessionCandidates) clearable() bool { return c.cookies > 0 && !c.dropped }

// fromHeader reports whether any candidate came from the session header
// (a non-browser client, whose token no Set-Cookie can clear).
func (c *sessionCandidates) fromHeader() bool {
	for i := range c.n {
		if !c.fromCookie[i] {
			return true
		}
	}
	return false
}

// sessionCandidates returns the request's session tokens. Values of the
// wrong shape are ignored: they never reach the store.
func (a *Auth) sessionCandidates(r *http.Request) sessionCandidates {
	var c sessionCandidates
	for _, v := range r.Header[a.sessionHeader] {
		if format.ValidToken(v) {
			c.add(v, false)
		}
	}
	for _, line := range r.Header["Cookie"] {
		for line != "" { // a loop, not strings.SplitSeq: no closure per request
			part, rest, _ := strings.Cut(line, ";")
			line = rest
			if v, ok := cookiePair(part, a.cookieName); ok && format.ValidToken(v) {
				c.cookies++
				c.add(v, true)
			}
		}
	}
	return c
}

// frontendToken returns the request's frontend token, whether one was
// presented at all, and whether it came from a cookie. The token's syntax
// is not checked here, except that among several TokenCookie cookies the
// first well-formed one is taken (a junk one does not hide it).
func (a *Auth) frontendToken(r *http.Request) (token string, present, fromCookie bool) {
	if v := firstValue(r.Header[a.tokenHeader]); v != "" {
		if !a.bearer {
			return v, true, false
		}
		scheme, rest, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			// Another scheme (Basic...) is not ours to judge.
			return "", false, false
		}
		return strings.Trim(rest, " \t"), true, false // RFC 9110's whitespace: no other
	}
	if a.cfg.TokenCookie == "" {
		return "", false, false
	}
	for v := range a.tokenCookies(r) {
		if provider.ValidSyntax(v) {
			return v, true, true
		}
		if !present {
			token, present, fromCookie = v, true, true
		}
	}
	return token, present, fromCookie
}

// tokenCookies yields the non-empty values of the request's TokenCookie
// cookies, at most maxSessionCandidates of them.
func (a *Auth) tokenCookies(r *http.Request) iter.Seq[string] {
	return func(yield func(string) bool) {
		n := 0
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				v, ok := cookiePair(part, a.cfg.TokenCookie)
				if !ok || v == "" {
					continue
				}
				if n++; n > maxSessionCandidates || !yield(v) {
					return
				}
			}
		}
	}
}

// mintedFromTokenCookie reports whether one of the request's well-formed
// TokenCookie cookies is the frontend token the session stored at key was
// minted from: a stale tab's older token cookie sent first does not
// replace the live session the newer one made.
func (a *Auth) mintedFromTokenCookie(r *http.Request, key string) bool {
	for v := range a.tokenCookies(r) {
		if provider.ValidSyntax(v) && format.Equal(key, a.engine.Key(v)) {
			return true
		}
	}
	return false
}

// cookiePair returns the value of part, one name=value pair of a Cookie
// header, without its optional quotes, if the pair is called name.
func cookiePair(part, name string) (string, bool) {
	n, v, ok := strings.Cut(strings.TrimSpace(part), "=")
	if !ok || n != name {
		return "", false
	}
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, true
}

// remoteIP is the default Config.ClientIP: the host of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxUserAgent bounds the User-Agent a session stores.
const maxUserAgent = 512

// clientOf returns what a session minted for r records of its client.
func clientOf(r *http.Request, ip func(*http.Request) string) engine.Client {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return engine.Client{IP: ip(r), UserAgent: ua}
}

// firstValue is http.Header.Get for a key already in canonical form: the
// first value, "" when none.
func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}
