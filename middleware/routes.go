package middleware

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/internal/format"
)

// Routes returns the session routes, mounted under prefix (such as
// "/auth"), with Handler already applied:
//
//	POST   {prefix}/session   exchange the bearer frontend token for a session:
//	                          201 {"user", "session"} with the cookie and the
//	                          session header (200 when the token's session
//	                          already existed)
//	GET    {prefix}/session   the current session: {"user", "session"}
//	GET    {prefix}/sessions  {"sessions": [...]}: the user's live sessions, newest
//	                          first, the current one flagged "current"
//	DELETE {prefix}/session   sign out this session (204, cookie cleared)
//	DELETE {prefix}/sessions  sign out every session of the user (204, cookie cleared)
//	DELETE {prefix}/sessions/others
//	                          sign out all but this one: 200 {"signedOut": n}
//	DELETE {prefix}/sessions/{id}
//	                          revoke one of the user's own sessions by public id
//	                          (204; 404 not_found for any other id)
//
// Every route but POST needs a session (401 without). The DELETE routes
// change state, so a cookie-authenticated cross-origin request gets 403;
// GET routes never change anything. No response carries another session's
// token.
//
// Mount it on any router: r.Mount("/auth", auth.Routes("/auth")) with chi,
// mux.Handle("/auth/", auth.Routes("/auth")) with net/http. Other paths
// under prefix answer 404.
func (a *Auth) Routes(prefix string) http.Handler {
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		prefix = ""
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/session", a.serveExchange)
	mux.Handle("GET "+prefix+"/session", a.RequireSession(http.HandlerFunc(serveCurrent)))
	mux.Handle("GET "+prefix+"/sessions", a.RequireSession(http.HandlerFunc(a.serveList)))
	mux.Handle("DELETE "+prefix+"/session", a.RequireSession(http.HandlerFunc(a.serveSignOut)))
	mux.Handle("DELETE "+prefix+"/sessions", a.RequireSession(http.HandlerFunc(a.serveSignOutAll)))
	mux.Handle("DELETE "+prefix+"/sessions/others", a.RequireSession(http.HandlerFunc(a.serveSignOutOthers)))
	mux.Handle("DELETE "+prefix+"/sessions/{id}", a.RequireSession(http.HandlerFunc(a.serveRevoke)))
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such route", 0)
	})
	return a.Handler(mux)
}

// serveExchange is POST /session: the explicit exchange.
func (a *Auth) serveExchange(w http.ResponseWriter, r *http.Request) {
	if _, present, _ := a.frontendToken(r); !present {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "send the frontend token as Authorization: Bearer <token>", 0)
		return
	}
	st := stateFrom(r.Context())
	switch {
	case st.err != nil:
		a.storeUnavailable(w, st.err)
		return
	case st.loaded.Session == nil:
		writeError(w, http.StatusUnauthorized, codeUnauthorized, messageSessionRequired, 0)
		return
	}
	status := http.StatusOK
	if st.loaded.Minted {
		status = http.StatusCreated
	}
	if st.withheld {
		// The client asked for its session: it gets its token even when
		// the middleware, on an implicit exchange, would not send it.
		a.writeSession(w, st.loaded.Token, st.loaded.Session)
	}
	s, _ := SessionFrom(r.Context())
	writeJSON(w, status, userAndSession(s))
}

// serveCurrent is GET /session.
func serveCurrent(w http.ResponseWriter, r *http.Request) {
	s, _ := SessionFrom(r.Context())
	writeJSON(w, http.StatusOK, userAndSession(s))
}

// serveList is GET /sessions.
func (a *Auth) serveList(w http.ResponseWriter, r *http.Request) {
	s, _ := SessionFrom(r.Context())
	all, err := a.Sessions(r.Context(), s.Identity.Provider, s.Identity.UserID)
	if err != nil {
		a.storeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": all})
}

// serveSignOut is DELETE /session.
func (a *Auth) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if err := a.SignOut(r.Context()); err != nil {
		a.storeUnavailable(w, err)
		return
	}
	a.clearEnded(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// serveSignOutAll is DELETE /sessions.
func (a *Auth) serveSignOutAll(w http.ResponseWriter, r *http.Request) {
	if _, err := a.SignOutAll(r.Context()); err != nil {
		a.storeUnavailable(w, err)
		return
	}
	a.clearEnded(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// serveSignOutOthers is DELETE /sessions/others.
func (a *Auth) serveSignOutOthers(w http.ResponseWriter, r *http.Request) {
	n, err := a.SignOutOthers(r.Context())
	if err != nil {
		a.storeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"signedOut": n})
}

// serveRevoke is DELETE /sessions/{id}.
func (a *Auth) serveRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	switch err := a.Revoke(r.Context(), id); {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "no such session", 0)
		return
	case err != nil:
		a.storeUnavailable(w, err)
		return
	}
	if s, _ := SessionFrom(r.Context()); format.Equal(s.ID, id) {
		a.clearEnded(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

// userView is the public JSON shape of a user: {"id", "provider"}.
type userView struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
}

func userAndSession(s *Session) any {
	return struct {
		User    userView `json:"user"`
		Session *Session `json:"session"`
	}{userView{s.Identity.UserID, s.Identity.Provider}, s}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
