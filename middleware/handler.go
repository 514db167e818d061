package middleware

import (
	"context"
	"net/http"

	"github.com/sessiongate/sessiongate/provider"
)

// Handler is the middleware: mount it on a router (r.Use(auth.Handler)).
// For each request it
//
//  1. reads the session token (session header, then cookie) and the
//     frontend token (TokenHeader, then TokenCookie);
//  2. reuses a live session that carries no frontend token or the very
//     token it was minted from: one store read, no upstream call, no write;
//  3. otherwise exchanges the frontend token: a session already minted from
//     it is reused; else the provider validates it once (concurrent
//     requests share one call) and a fresh session is minted, replacing any
//     session the request carried;
//  4. calls next with the session in the context (SessionFrom, UserFrom),
//     or without one when the request had no credentials.
//
// It answers itself only when the request presented credentials it cannot
// accept: 401 invalid_token for a malformed or rejected frontend token
// (malformed ones never reach the provider), 503 provider_unavailable or
// session_store_unavailable with Retry-After when an exchange cannot be
// done, and 403 for a cross-origin unsafe request authenticated by a
// cookie. When the store cannot load a session, next runs without one and
// RequireSession answers 503. Mounting Handler twice is harmless.
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
	sessionToken, sessionFromCookie := a.sessionToken(r)
	frontToken, hasFront, frontFromCookie := a.frontendToken(r)
	if sessionToken == "" && !hasFront {
		a.call(w, r, base, next, &state{})
		return
	}
	if a.guesses.any() {
		if wait := a.guesses.wait(a.cfg.ClientIP(r)); wait > 0 {
			a.counters.rateLimited.Add(1)
			a.cfg.Logger.Warn("sessiongate: client rate limited after failed credentials", "client", a.cfg.ClientIP(r))
			writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many failed attempts; retry later", wait)
			return
		}
	}
	if hasFront && !provider.ValidSyntax(frontToken) {
		a.guesses.failed(a.cfg.ClientIP(r))
		a.counters.rejected.Add(1)
		a.cfg.Logger.Debug("sessiongate: malformed frontend token refused")
		writeError(w, http.StatusUnauthorized, codeInvalidToken, "the token is malformed", 0)
		return
	}

	var (
		ctx     = base
		current *Session
	)
	if sessionToken != "" {
		loaded, s, err := a.load(base, sessionToken)
		if err != nil {
			if hasFront {
				a.storeUnavailable(w, err)
				return
			}
			a.call(w, r, base, next, &state{err: err})
			return
		}
		if s != nil {
			ctx, current = loaded, s
		}
	}

	if current != nil && (!hasFront || sameKey(current.key, a.tokenKey(frontToken))) {
		if (sessionFromCookie || frontFromCookie) && a.cfg.CrossOrigin.Check(r) != nil {
			writeError(w, http.StatusForbidden, codeCrossOrigin, "cross-origin request refused", 0)
			return
		}
		a.counters.reused.Add(1)
		a.cfg.Logger.Debug("sessiongate: session reused", "session", current.ID)
		a.call(w, r, ctx, next, &state{session: current, token: sessionToken})
		return
	}
	if !hasFront {
		// A session token that opens nothing: a guess, or a session that
		// ended or expired. A browser is told to drop the cookie.
		a.guesses.failed(a.cfg.ClientIP(r))
		if sessionFromCookie {
			a.clearSession(w)
		}
		a.call(w, r, base, next, &state{})
		return
	}

	if frontFromCookie && a.cfg.CrossOrigin.Check(r) != nil {
		writeError(w, http.StatusForbidden, codeCrossOrigin, "cross-origin request refused", 0)
		return
	}
	res, err := a.exchange(r, frontToken, current, ctx)
	if err != nil {
		if isGuess(err) {
			a.guesses.failed(a.cfg.ClientIP(r))
		}
		a.exchangeFailed(w, err)
		return
	}
	if current != nil && current.key != res.session.key {
		a.end(base, endReplaced, current)
	}
	if res.token != sessionToken {
		a.writeSession(w, res.token, res.session)
	}
	a.call(w, r, res.ctx, next, &state{session: res.session, token: res.token, minted: res.minted})
}

// call runs next with r in ctx and st, then saves what changed: values
// the handler put in the session, and its activity when a keep-alive is
// due (see save).
func (a *Auth) call(w http.ResponseWriter, r *http.Request, ctx context.Context, next http.Handler, st *state) {
	ctx = withState(ctx, st)
	next.ServeHTTP(w, r.WithContext(ctx))
	if st.session == nil {
		return
	}
	a.save(ctx, st)
}

func (a *Auth) storeUnavailable(w http.ResponseWriter, err error) {
	a.cfg.Logger.Error("sessiongate: session store unavailable", "error", err)
	writeError(w, http.StatusServiceUnavailable, codeStoreDown, "the session store is unavailable; retry later", a.cfg.RetryAfter)
}
