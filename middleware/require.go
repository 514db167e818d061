package middleware

import "net/http"

// RequireSession protects a route: requests without a live session get
// 401 with WWW-Authenticate: Bearer (503 when the session store could not
// be read), and never reach next. It runs Handler itself when Handler is
// not mounted in front of it, so r.With(auth.RequireSession) works alone.
func (a *Auth) RequireSession(next http.Handler) http.Handler {
	check := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		switch {
		case st.loaded.Session != nil:
			next.ServeHTTP(w, r)
		case st.err != nil:
			a.storeUnavailable(w, st.err)
		default:
			writeError(w, http.StatusUnauthorized, codeUnauthorized, messageSessionRequired, 0)
		}
	})
	withHandler := a.Handler(check)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stateFrom(r.Context()) == nil {
			withHandler.ServeHTTP(w, r)
			return
		}
		check.ServeHTTP(w, r)
	})
}
