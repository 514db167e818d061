package middleware

import (
	"net/http"
	"time"
)

// writeSession hands a new session token to the client: the session cookie
// and the session header, on a response that must not be cached.
func (a *Auth) writeSession(w http.ResponseWriter, token string, s *Session) {
	c := a.cookie(token)
	if a.sm.Cookie.Persist {
		c.MaxAge = max(1, int(s.Expires.Sub(a.cfg.Now())/time.Second))
	}
	http.SetCookie(w, c)
	h := w.Header()
	h.Set(a.cfg.SessionHeader, token)
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Cookie")
	h.Add("Vary", "Authorization")
}

// clearSession tells the client to drop its session cookie.
func (a *Auth) clearSession(w http.ResponseWriter) {
	c := a.cookie("")
	c.MaxAge = -1
	c.Expires = time.Unix(1, 0)
	http.SetCookie(w, c)
	w.Header().Set("Cache-Control", "no-store")
}

func (a *Auth) cookie(value string) *http.Cookie {
	sc := a.sm.Cookie
	return &http.Cookie{
		Name:     a.cookieName,
		Value:    value,
		Path:     sc.Path,
		Domain:   sc.Domain,
		Secure:   !a.cfg.InsecureCookie,
		HttpOnly: sc.HttpOnly,
		SameSite: sc.SameSite,
	}
}
