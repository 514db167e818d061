package middleware

import (
	"errors"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/internal/format"
)

// ErrUnauthenticated is what an AdminRoutes authorize function returns
// (or wraps) for a request that did not say who it is (no or an unknown
// key): it gets 401 with WWW-Authenticate: Bearer. Any other error is 403.
var ErrUnauthenticated = errors.New("sessiongate/middleware: the request is not authenticated")

// AdminRoutes returns the back-office API, mounted under prefix (such as
// "/admin", or "" at the root of an internal listener), for support
// staff and account-deletion jobs who see and end a user's sessions
// without being that user:
//
//	GET    {prefix}/users/{provider}/{user}/sessions
//	                 200 {"sessions": [...], "next": "..."}: a page of the user's
//	                 live sessions, paged as Routes' list (?limit, ?cursor,
//	                 Link rel="next"; 400 invalid_request for a bad one), in
//	                 its shape (no token, no claims); an unknown user has none
//	DELETE {prefix}/users/{provider}/{user}/sessions
//	                 end every session of the user: 200 {"ended": n}
//	DELETE {prefix}/users/{provider}/{user}/sessions/{id}
//	                 end one session by its public id: 204, or 404 not_found
//	                 when the user has no live session with that id
//
// {provider} and {user} are path segments, percent-decoded once and
// matched exactly (a user id with a slash is sent as %2F). A session is
// ended as by RevokeUser and Revoke: its frontend token cannot sign in
// again until it expires, and the engine logs each ("user revoked",
// "revoked"). There is no route by public id alone: a public id is a
// one-way hash of a session's store key, and the stores keep sessions by
// user, so finding one without its user would mean reading every session.
//
// Every request, whatever its path, first passes through authorize, which
// the application gives and which decides who may do this (a static key
// compared in constant time, mTLS, a gateway's header...): nil lets it
// through; an error that is or wraps ErrUnauthenticated is 401 with
// WWW-Authenticate: Bearer; any other error, or a panic, is 403
// forbidden (it fails closed). Nothing
// reaches the store before authorize said yes. Other paths under prefix
// are 404, a store that cannot answer 503 session_store_unavailable. The
// answers are never cached. Mount it on an internal listener, not beside
// the public routes: it does not use Handler, sessions, cookies or
// cross-origin checks, since its caller is no browser user.
//
// AdminRoutes panics if authorize is nil: there is no default that lets
// anyone in.
func (a *Auth) AdminRoutes(prefix string, authorize func(*http.Request) error) http.Handler {
	if authorize == nil {
		panic("sessiongate/middleware: AdminRoutes needs an authorize function (there is no default that lets anyone in)")
	}
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		prefix = ""
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"/users/{provider}/{user}/sessions", a.serveAdminList)
	mux.HandleFunc("DELETE "+prefix+"/users/{provider}/{user}/sessions", a.serveAdminEndUser)
	mux.HandleFunc("DELETE "+prefix+"/users/{provider}/{user}/sessions/{id}", a.serveAdminEndOne)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such route", 0)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := a.authorized(authorize, r); {
		case errors.Is(err, ErrUnauthenticated):
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "authenticate to use the back-office API", 0)
		case err != nil:
			writeError(w, http.StatusForbidden, codeForbidden, "not allowed", 0)
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// authorized runs authorize, failing closed: a panic in it is a refusal
// (403), not a dropped connection, logged with its stack (not its value,
// which could hold the caller's credentials); http.ErrAbortHandler is
// passed on, as net/http means it.
func (a *Auth) authorized(authorize func(*http.Request) error, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.cfg.Logger.Error("sessiongate: the back-office authorize function panicked; the request is refused", "stack", string(debug.Stack()))
			err = errors.New("sessiongate/middleware: the authorize function panicked")
		}
	}()
	return authorize(r)
}

// serveAdminList is GET /users/{provider}/{user}/sessions.
func (a *Auth) serveAdminList(w http.ResponseWriter, r *http.Request) {
	req, ok := pageRequest(w, r)
	if !ok {
		return
	}
	page, err := sessionsPage(r.Context(), a.engine, r.PathValue("provider"), r.PathValue("user"), req, "")
	a.servePage(w, r, req, page, err)
}

// serveAdminEndUser is DELETE /users/{provider}/{user}/sessions.
func (a *Auth) serveAdminEndUser(w http.ResponseWriter, r *http.Request) {
	n, err := revokeUser(r.Context(), a.engine, r.PathValue("provider"), r.PathValue("user"))
	if err != nil {
		a.storeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// serveAdminEndOne is DELETE /users/{provider}/{user}/sessions/{id}.
func (a *Auth) serveAdminEndOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := a.engine.EndWhere(r.Context(), engine.Revoked, r.PathValue("provider"), r.PathValue("user"), nil,
		func(o *format.Session) bool { return format.Equal(o.ID, id) })
	switch {
	case err != nil:
		a.storeUnavailable(w, err)
	case n == 0:
		writeError(w, http.StatusNotFound, codeNotFound, "no such session", 0)
	default:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}
