package middleware

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

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

// sessionToken returns the request's session token from the session header
// or, failing that, the session cookie, and whether it came from the
// cookie. A value of the wrong shape counts as absent.
func (a *Auth) sessionToken(r *http.Request) (token string, fromCookie bool) {
	if v := r.Header.Get(a.cfg.SessionHeader); v != "" {
		if validSessionToken(v) {
			return v, false
		}
		return "", false
	}
	if v, ok := cookieValue(r.Header, a.cookieName); ok && validSessionToken(v) {
		return v, true
	}
	return "", false
}

// frontendToken returns the request's frontend token, whether one was
// presented at all, and whether it came from a cookie. The token's syntax
// is not checked here.
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
	if a.cfg.TokenCookie != "" {
		if v, ok := cookieValue(r.Header, a.cfg.TokenCookie); ok && v != "" {
			return v, true, true
		}
	}
	return "", false, false
}

// cookieValue returns the value of the first cookie called name in h's
// Cookie headers, without its optional quotes. Unlike http.Request.Cookie
// it allocates nothing and does not check the value: callers check it.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			n, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || n != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
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
