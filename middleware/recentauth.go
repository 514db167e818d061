package middleware

import (
	"net/http"
	"strconv"
	"time"
)

// RequireRecentAuth protects a sensitive route (signing out every device,
// changing an e-mail address) with step-up authentication (OWASP ASVS 5.0
// V7.5): the request needs a live session whose user authenticated at the
// provider at most maxAge ago. A session's authentication time is its
// frontend token's "auth_time" claim when the provider reads one
// (provider.Identity.AuthTime), else when the token was exchanged.
//
// A request without a live session gets what RequireSession answers (401,
// or 503 when the store could not be read). A session authenticated
// longer ago than maxAge gets 401 with the challenge of RFC 9470 (OAuth
// 2.0 Step-Up Authentication Challenge):
//
//	WWW-Authenticate: Bearer error="insufficient_user_authentication",
//	  error_description="a more recent authentication is required", max_age=N
//
// where N is maxAge in whole seconds (rounded down, at least 1), and the
// JSON body {"error": "insufficient_user_authentication", "message": ...}.
// The client answers it by getting a fresh frontend token from its
// provider (asking it for an authentication at most N seconds old: OIDC's
// max_age or prompt=login) and sending it, with its session, on the retry.
// The middleware then continues the session (see Handler): the same device
// and public id, values kept, its authentication time renewed, and a new
// session token in the cookie and the session header; the token the
// request carried is ended. A provider that reports auth_time is
// believed: a refreshed token with the old auth_time does not renew it.
// A fresh token of another user is a new sign-in, as on every route: that
// user's new session replaces the one the request carried, and the route
// runs for that user.
//
// Like RequireSession it runs Handler itself when Handler is not mounted
// in front of it. The clock is Config.Now. RequireRecentAuth panics if
// maxAge is under one second: RFC 9470's max_age is whole seconds, and
// the challenge announces maxAge rounded down, so that a client that
// honours it always satisfies the route.
func (a *Auth) RequireRecentAuth(maxAge time.Duration) func(http.Handler) http.Handler {
	if maxAge < time.Second {
		panic("sessiongate/middleware: RequireRecentAuth needs a maxAge of at least one second (RFC 9470's max_age is whole seconds)")
	}
	seconds := int64(maxAge / time.Second)
	challenge := `Bearer error="` + codeInsufficientAuth + `", error_description="` + messageInsufficientAuth +
		`", max_age=` + strconv.FormatInt(seconds, 10)
	return func(next http.Handler) http.Handler {
		return a.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := current(r.Context())
			if a.cfg.Now().Sub(s.AuthTime) > maxAge {
				w.Header().Set("WWW-Authenticate", challenge)
				writeError(w, http.StatusUnauthorized, codeInsufficientAuth, messageInsufficientAuth, 0)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}
