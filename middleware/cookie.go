package middleware

import (
	"net/http"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/internal/format"
)

// writeSession hands a new session token to the client: the session cookie
// and the session header, on a response that must not be cached.
func (a *Auth) writeSession(w http.ResponseWriter, token string, s *format.Session) {
	c := a.cookie(token)
	if !a.cfg.Cookie.SessionOnly {
		c.MaxAge = max(1, int(s.Expires.Sub(a.cfg.Now())/time.Second))
	}
	http.SetCookie(w, c)
	w.Header().Set(a.cfg.SessionHeader, token)
	a.noStore(w.Header())
}

// clearSession tells the client to drop its session cookie, on a response
// that must not be cached.
func (a *Auth) clearSession(w http.ResponseWriter) {
	c := a.cookie("")
	c.MaxAge = -1
	c.Expires = time.Unix(1, 0)
	http.SetCookie(w, c)
	a.noStore(w.Header())
}

// clearEnded answers a request whose own session was just ended (signed
// out, revoked): the response is not cached, no longer hands out the
// session if this request's exchange had, and clears the session cookie
// if the browser can hold no other live one under this name. A clearing
// Set-Cookie deletes whichever cookie the browser keeps for this name,
// path and domain, so it is sent only when every session cookie the
// request carried was the ended session's; a client that sent only the
// session header gets none.
func (a *Auth) clearEnded(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	a.noStore(h)
	handedOut := h.Get(a.cfg.SessionHeader) != ""
	h.Del(a.cfg.SessionHeader)
	st := stateFrom(r.Context())
	c := a.sessionCandidates(r)
	if handedOut {
		a.clearSession(w) // overrides the Set-Cookie of this very response
		return
	}
	if st == nil || c.cookies == 0 || c.dropped {
		return
	}
	for i := range c.n {
		if c.fromCookie[i] && (st.loaded.Session == nil || c.token[i] != st.loaded.Token) {
			return
		}
	}
	a.clearSession(w)
}

func (a *Auth) cookie(value string) *http.Cookie {
	return &http.Cookie{
		Name:     a.cookieName,
		Value:    value,
		Path:     a.cfg.Cookie.Path,
		Domain:   a.cfg.Cookie.Domain,
		Secure:   !a.cfg.InsecureCookie,
		HttpOnly: true,
		SameSite: a.cfg.Cookie.SameSite,
	}
}

// noStore marks h as the header of a response that sets or clears the
// session: Cache-Control: no-store, whatever was there, and Vary on the
// request headers that carry credentials, merged into any Vary already
// set. Calling it again changes nothing.
func (a *Auth) noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h["Vary"] = mergeVary(h["Vary"], a.vary)
}

// mergeVary returns the Vary values have plus the header names in add,
// each once (names compare regardless of case), as one value; "*" alone
// stays "*", which already varies on everything.
func mergeVary(have, add []string) []string {
	names := make([]string, 0, len(have)+len(add))
	seen := func(name string) bool {
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return true
			}
		}
		return false
	}
	for _, v := range have {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			if name == "*" {
				return []string{"*"}
			}
			if name != "" && !seen(name) {
				names = append(names, name)
			}
		}
	}
	for _, name := range add {
		if !seen(name) {
			names = append(names, name)
		}
	}
	return []string{strings.Join(names, ", ")}
}
