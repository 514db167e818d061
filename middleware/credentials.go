package middleware

import (
	"iter"
	"net"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// maxSessionCandidates bounds how many session tokens one request may have
// looked up (one store read each). A browser holds one session cookie per
// (name, domain, path): a stale tab's, a sibling subdomain's and this
// site's together are at most a few.
const maxSessionCandidates = 4

// sessionCandidates are the well-formed session tokens a request carries,
// distinct, in the order they are tried: the session header's values,
// then the session cookies' in the order the browser sent them (longest
// path first). A dead or junk one never hides a live one: each is tried
// until one opens a live session.
type sessionCandidates struct {
	token      [maxSessionCandidates]string
	fromCookie [maxSessionCandidates]bool
	n          int
	// cookies counts well-formed session cookies, duplicates included.
	cookies int
	// dropped is true when well-formed tokens past maxSessionCandidates
	// were left untried: one of them may be live.
	dropped bool
}

func (c *sessionCandidates) add(token string, fromCookie bool) {
	for i := range c.n {
		if c.token[i] == token {
			c.fromCookie[i] = c.fromCookie[i] || fromCookie
			return
		}
	}
	if c.n == maxSessionCandidates {
		c.dropped = true
		return
	}
	c.token[c.n], c.fromCookie[c.n] = token, fromCookie
	c.n++
}

// clearable reports whether the session cookie may be cleared once every
// candidate turned out dead: a clearing Set-Cookie deletes the cookie the
// browser holds under this name, path and domain, which may be any of the
// ones it sent, so it is safe only when all of them were tried. Junk
// (malformed) values alone are left alone, as they always were.
func (c *sessionCandidates) clearable() bool { return c.cookies > 0 && !c.dropped }

// fromHeader reports whether any candidate came from the session header
// (a non-browser client, whose token no Set-Cookie can clear).
func (c *sessionCandidates) fromHeader() bool {
	for i := range c.n {
		if !c.fromCookie[i] {
			return true
		}
	}
	return false
}

// sessionCandidates returns the request's session tokens. Values of the
// wrong shape are ignored: they never reach the store.
func (a *Auth) sessionCandidates(r *http.Request) sessionCandidates {
	var c sessionCandidates
	for _, v := range r.Header[a.sessionHeader] {
		if format.ValidToken(v) {
			c.add(v, false)
		}
	}
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if v, ok := cookiePair(part, a.cookieName); ok && format.ValidToken(v) {
				c.cookies++
				c.add(v, true)
			}
		}
	}
	return c
}

// frontendToken returns the request's frontend token, whether one was
// presented at all, and whether it came from a cookie. The token's syntax
// is not checked here, except that among several TokenCookie cookies the
// first well-formed one is taken (a junk one does not hide it).
func (a *Auth) frontendToken(r *http.Request) (token string, present, fromCookie bool) {
	if v := r.Header.Get(a.cfg.TokenHeader); v != "" {
		if !a.bearer {
			return v, true, false
		}
		scheme, rest, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			// Another scheme (Basic...) is not ours to judge.
			return "", false, false
		}
		return strings.TrimSpace(rest), true, false
	}
	if a.cfg.TokenCookie == "" {
		return "", false, false
	}
	for v := range a.tokenCookies(r) {
		if provider.ValidSyntax(v) {
			return v, true, true
		}
		if !present {
			token, present, fromCookie = v, true, true
		}
	}
	return token, present, fromCookie
}

// tokenCookies yields the non-empty values of the request's TokenCookie
// cookies, at most maxSessionCandidates of them.
func (a *Auth) tokenCookies(r *http.Request) iter.Seq[string] {
	return func(yield func(string) bool) {
		n := 0
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				v, ok := cookiePair(part, a.cfg.TokenCookie)
				if !ok || v == "" {
					continue
				}
				if n++; n > maxSessionCandidates || !yield(v) {
					return
				}
			}
		}
	}
}

// mintedFromTokenCookie reports whether one of the request's well-formed
// TokenCookie cookies is the frontend token the session stored at key was
// minted from: a stale tab's older token cookie sent first does not
// replace the live session the newer one made.
func (a *Auth) mintedFromTokenCookie(r *http.Request, key string) bool {
	for v := range a.tokenCookies(r) {
		if provider.ValidSyntax(v) && format.Equal(key, a.engine.Key(v)) {
			return true
		}
	}
	return false
}

// cookiePair returns the value of part, one name=value pair of a Cookie
// header, without its optional quotes, if the pair is called name.
func cookiePair(part, name string) (string, bool) {
	n, v, ok := strings.Cut(strings.TrimSpace(part), "=")
	if !ok || n != name {
		return "", false
	}
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, true
}

// remoteIP is the default Config.ClientIP: the host of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxUserAgent bounds the User-Agent a session stores.
const maxUserAgent = 512

// clientOf returns what a session minted for r records of its client.
func clientOf(r *http.Request, ip func(*http.Request) string) engine.Client {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return engine.Client{IP: ip(r), UserAgent: ua}
}
