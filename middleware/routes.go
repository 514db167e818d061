package middleware

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
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
//	GET    {prefix}/sessions  {"sessions": [...], "next": "..."}: a page of the
//	                          user's live sessions, latest expiry (newest) first,
//	                          the current one flagged "current"; ?limit=N (1 to
//	                          MaxPageSize, default DefaultPageSize) and
//	                          ?cursor=<next> for the page after (see SessionsPage);
//	                          next, and a Link rel="next" header, only when more follow
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
	req, ok := pageRequest(w, r)
	if !ok {
		return
	}
	page, err := a.SessionsPage(r.Context(), s.Identity.Provider, s.Identity.UserID, req)
	a.servePage(w, r, req, page, err)
}

// codeInvalidRequest is the error code of a listing's bad limit or cursor.
const codeInvalidRequest = "invalid_request"

// pageRequest reads a listing's ?limit and ?cursor, or answers 400
// invalid_request (and returns false) when either is given twice, or the
// limit is not a whole number from 1 to MaxPageSize. The cursor itself is
// checked by SessionsPage.
func pageRequest(w http.ResponseWriter, r *http.Request) (PageRequest, bool) {
	q := r.URL.Query()
	var req PageRequest
	if v, given := q["limit"]; given {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxPageSize || len(v) > 1 || v[0] != strconv.Itoa(n) { // no "+5", no "05"
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "limit must be one whole number from 1 to "+strconv.Itoa(MaxPageSize), 0)
			return req, false
		}
		req.Limit = n
	}
	if v := q["cursor"]; len(v) > 0 {
		if len(v) > 1 {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "give one cursor", 0)
			return req, false
		}
		req.Cursor = v[0]
	}
	return req, true
}

// servePage answers a listing: the page, with a Link to the next one
// (RFC 8288) when there is one; 400 for a bad cursor, 503 when the store
// cannot answer.
func (a *Auth) servePage(w http.ResponseWriter, r *http.Request, req PageRequest, page SessionPage, err error) {
	switch {
	case errors.Is(err, ErrInvalidCursor), errors.Is(err, ErrInvalidLimit):
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "the cursor is not valid for this listing: list again without it", 0)
		return
	case err != nil:
		a.storeUnavailable(w, err)
		return
	}
	if page.Next != "" {
		q := url.Values{"cursor": {page.Next}}
		if req.Limit != 0 {
			q.Set("limit", strconv.Itoa(req.Limit))
		}
		w.Header().Set("Link", "<"+r.URL.EscapedPath()+"?"+q.Encode()+`>; rel="next"`)
	}
	b, err := page.appendJSON(make([]byte, 0, 64+512*len(page.Sessions)))
	if err != nil {
		a.storeUnavailable(w, err) // unreachable: a session's view always encodes
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// appendJSON appends p's JSON (as encoding/json writes it, and a newline)
// to b: each session's MarshalJSON once, without encoding/json's second
// pass over what a Marshaler returns.
func (p SessionPage) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"sessions":[`...)
	for i, s := range p.Sessions {
		if i > 0 {
			b = append(b, ',')
		}
		js, err := s.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, js...)
	}
	b = append(b, ']')
	if p.Next != "" {
		// A cursor is base64url: nothing in it needs escaping.
		b = append(b, `,"next":"`...)
		b = append(b, p.Next...)
		b = append(b, '"')
	}
	return append(b, "}\n"...), nil
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
