package middleware

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"iter"
	"net"
	"net/http"
	"strings"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// validSessionToken reports whether s has the shape of a session token.
// Anything else is ignored before it reaches the store.
func validSessionToken(s string) bool {
	if len(s) != store.TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

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
		if validSessionToken(v) {
			c.add(v, false)
		}
	}
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if v, ok := cookiePair(part, a.cookieName); ok && validSessionToken(v) {
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
		if provider.ValidSyntax(v) && sameKey(key, a.tokenKey(v)) {
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

// keyed returns HMAC-SHA256(secret, purpose NUL token extra): the only
// form in which a frontend token is ever kept or compared.
func (a *Auth) keyed(purpose, token string, extra []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(token))
	m.Write(extra)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// A session token is a split token (store.Token). Its selector is derived
// from the frontend token it was minted from, so that a client that
// resends only its frontend token finds its session with one read by key.
// Its validator is derived from the frontend token and a nonce drawn at
// each mint, so a session minted again from the same frontend token (after
// an expiry or idle timeout) has a token no earlier holder knows.

// selector returns the selector of the sessions minted from frontToken.
func (a *Auth) selector(frontToken string) [store.SelectorLen]byte {
	sum := a.keyed("sessiongate selector", frontToken, nil)
	return [store.SelectorLen]byte(sum[:store.SelectorLen])
}

// tokenKey returns the store key of the sessions minted from frontToken.
func (a *Auth) tokenKey(frontToken string) string {
	return store.KeyOf(a.selector(frontToken))
}

// sessionTokenFor returns the token of the session minted from frontToken
// (whose selector is sel) with nonce.
func (a *Auth) sessionTokenFor(frontToken string, sel [store.SelectorLen]byte, nonce []byte) string {
	sum := a.keyed("sessiongate validator", frontToken, nonce)
	return store.Token(sel, [store.ValidatorLen]byte(sum[:store.ValidatorLen]))
}

// newNonce returns store.NonceLen bytes from crypto/rand.
func newNonce() []byte {
	b := make([]byte, store.NonceLen)
	rand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return b
}

// sameKey compares two keys or ids in constant time.
func sameKey(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// remoteIP is the default Config.ClientIP: the host of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
