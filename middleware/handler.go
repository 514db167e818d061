package middleware

import (
	"context"
	"errors"
	"net/http"
	"time"

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
//     session the request carried;
//  4. calls next with the session in the context (SessionFrom, UserFrom),
//     or without one when the request had no live credentials. Either way
//     the scs API works in next: without a session its reads give zero
//     values and its writes are dropped.
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
		a.serve(w, r, next)
	})
}

func (a *Auth) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	base := r.Context()
	candidates := a.sessionCandidates(r)
	frontToken, hasFront, frontFromCookie := a.frontendToken(r)
	if candidates.n == 0 && !hasFront {
		a.call(w, r, base, next, &state{})
		return
	}
	if hasFront && !provider.ValidSyntax(frontToken) {
		a.failed(r, 1)
		a.counters.rejected.Add(1)
		a.cfg.Logger.Debug("sessiongate: malformed frontend token refused")
		writeError(w, http.StatusUnauthorized, codeInvalidToken, "the token is malformed", 0)
		return
	}

	// The first live session among the candidates is the request's.
	var (
		ctx          = base
		current      *Session
		sessionToken string
		fromCookie   bool
		dead         int
	)
	for i := range candidates.n {
		loaded, s, err := a.load(base, candidates.token[i])
		if err != nil {
			if hasFront {
				a.storeUnavailable(w, err)
				return
			}
			a.call(w, r, base, next, &state{err: err})
			return
		}
		if s != nil {
			ctx, current, sessionToken, fromCookie = loaded, s, candidates.token[i], candidates.fromCookie[i]
			break
		}
		dead++
	}

	if current != nil && (!hasFront || sameKey(current.key, a.tokenKey(frontToken)) ||
		frontFromCookie && a.mintedFromTokenCookie(r, current.key)) {
		if (fromCookie || frontFromCookie) && a.cfg.CrossOrigin.Check(r) != nil {
			writeError(w, http.StatusForbidden, codeCrossOrigin, "cross-origin request refused", 0)
			return
		}
		a.counters.reused.Add(1)
		a.cfg.Logger.Debug("sessiongate: session reused", "session", current.ID)
		a.call(w, r, ctx, next, &state{session: current, token: sessionToken})
		return
	}
	if !hasFront {
		// Session tokens that open nothing: guesses, or sessions that
		// ended or expired. A browser is told to drop the cookie, if that
		// cannot delete one that was not tried.
		// A limited client's dead cookies get 429 (and are cleared). A dead
		// session header gets its usual answer: nothing can clear it, so a
		// 429 would keep the client retrying it instead of signing in again.
		wait := a.failed(r, dead)
		if wait > 0 && !candidates.fromHeader() {
			a.counters.rateLimited.Add(1)
			if candidates.clearable() {
				a.clearSession(w)
			}
			writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many failed attempts; retry later", wait)
			return
		}
		if candidates.clearable() {
			a.clearSession(w)
			w = &noStoreWriter{ResponseWriter: w, a: a}
		}
		a.call(w, r, base, next, &state{})
		return
	}

	if frontFromCookie && a.cfg.CrossOrigin.Check(r) != nil {
		writeError(w, http.StatusForbidden, codeCrossOrigin, "cross-origin request refused", 0)
		return
	}
	if a.guesses.any() {
		if ip := a.cfg.ClientIP(r); a.guesses.wait(ip) > 0 {
			// A limited client's new tokens are validated one at a
			// time (guessLimiter); its existing sessions are not held up.
			r = r.WithContext(a.guesses.queued(base, ip))
		}
	}
	var carried *exchanged
	if current != nil {
		carried = &exchanged{token: sessionToken, session: current, ctx: ctx}
	}
	res, err := a.exchange(r, frontToken, carried)
	if err != nil {
		switch {
		case errors.Is(err, errNoTurn):
			a.counters.rateLimited.Add(1)
			writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many failed attempts; retry later", a.cfg.GuessInterval)
			return
		case isGuess(err):
			a.failed(r, 1)
		}
		a.exchangeFailed(w, err)
		return
	}
	if current != nil && current.key != res.session.key && !res.continued {
		a.replace(base, current)
	}
	if res.token != sessionToken {
		a.writeSession(w, res.token, res.session)
		w = &noStoreWriter{ResponseWriter: w, a: a}
	}
	a.call(w, r, res.ctx, next, &state{session: res.session, token: res.token, minted: res.minted})
}

// failed records n failed credentials of r's client and returns how long
// the client was already limited for before them (0 when it was not). The
// failure that starts a lockout is logged, once per lockout.
func (a *Auth) failed(r *http.Request, n int) (wait time.Duration) {
	if a.guesses == nil || n <= 0 {
		return 0
	}
	ip := a.cfg.ClientIP(r)
	wait = a.guesses.wait(ip)
	if a.guesses.failed(ip, n) {
		a.cfg.Logger.Warn("sessiongate: client rate limited after failed credentials; logged once per lockout",
			"client", clientKey(ip), "burst", a.cfg.GuessBurst, "interval", a.cfg.GuessInterval)
	}
	return wait
}

// call runs next with r in ctx and st, then saves what changed: values
// the handler put in the session, and its activity when a keep-alive is
// due (see save).
//
// Without a session, next still gets an scs session, empty and never
// saved: the scs API works in every handler behind the middleware (reads
// give zero values, writes are dropped and set no cookie).
func (a *Auth) call(w http.ResponseWriter, r *http.Request, ctx context.Context, next http.Handler, st *state) {
	if st.session == nil {
		ctx, _ = a.sm.Load(ctx, "") // an empty token: no store read, no error
	}
	ctx = withState(ctx, st)
	next.ServeHTTP(w, r.WithContext(ctx))
	if nw, ok := w.(*noStoreWriter); ok {
		nw.seal() // nothing was written: the server writes this header
	}
	if st.session == nil {
		return
	}
	a.save(ctx, st)
}

func (a *Auth) storeUnavailable(w http.ResponseWriter, err error) {
	if n, ok := a.storeDownLog.due(a.cfg.Now()); ok {
		a.cfg.Logger.Error("sessiongate: session store unavailable; logged at most once a second", "error", err, "since_last_logged", n)
	}
	writeError(w, http.StatusServiceUnavailable, codeStoreDown, "the session store is unavailable; retry later", a.cfg.RetryAfter)
}
