package middleware

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Routes returns the session routes, mounted under prefix (such as
// "/auth"), with Handler already applied:
//
//	POST   {prefix}/session   exchange the bearer frontend token for a session:
//	                          201 {"user", "session"} with the cookie and the
//	                          session header (200 when the token's session
//	                          already existed)
//	GET    {prefix}/session   the current session: {"user", "session"}
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
	case st.session == nil:
		writeError(w, http.StatusUnauthorized, codeUnauthorized, messageSessionRequired, 0)
		return
	}
	status := http.StatusOK
	if st.minted {
		status = http.StatusCreated
	}
	writeJSON(w, status, userAndSession(st.session))
}

// serveCurrent is GET /session.
func serveCurrent(w http.ResponseWriter, r *http.Request) {
	s, _ := SessionFrom(r.Context())
	writeJSON(w, http.StatusOK, userAndSession(s))
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
