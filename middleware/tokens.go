package middleware

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
)

// sessionTokenLen is the length of a session token: 32 random bytes,
// base64url without padding (the same shape scs generates).
const sessionTokenLen = 43

// newSessionToken returns 256 bits from crypto/rand, base64url encoded.
func newSessionToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// validSessionToken reports whether s has the shape of a session token.
// Anything else is ignored before it reaches the store.
func validSessionToken(s string) bool {
	if len(s) != sessionTokenLen {
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
	if c, err := r.Cookie(a.cookieName); err == nil && validSessionToken(c.Value) {
		return c.Value, true
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
		if c, err := r.Cookie(a.cfg.TokenCookie); err == nil && c.Value != "" {
			return c.Value, true, true
		}
	}
	return "", false, false
}

// keyed returns HMAC-SHA256(secret, purpose NUL token), base64url: the
// form in which a frontend token is ever stored or compared.
func (a *Auth) keyed(purpose, token string) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(token))
	return m.Sum(nil)
}

// tokenKey returns the lookup key of a frontend token.
func (a *Auth) tokenKey(token string) string {
	return base64.RawURLEncoding.EncodeToString(a.keyed("sessiongate link", token))
}

// sameKey compares two token keys in constant time.
func sameKey(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Link values: a live link holds the session token sealed with a key only
// the frontend token and the secret together give; a tombstone says the
// token's session was signed out.
const (
	linkLive      = 'S'
	linkTombstone = 'R'
)

var tombstone = []byte{linkTombstone}

// seal returns the link value for a session minted from frontendToken.
func (a *Auth) seal(frontendToken, sessionToken string) []byte {
	gcm := a.linkCipher(frontendToken)
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(sessionToken)+gcm.Overhead())
	out[0] = linkLive
	rand.Read(out[1:])
	return gcm.Seal(out, out[1:], []byte(sessionToken), nil)
}

var errBadLink = errors.New("sessiongate/middleware: link does not open")

// unseal returns the session token in a live link value.
func (a *Auth) unseal(frontendToken string, link []byte) (string, error) {
	gcm := a.linkCipher(frontendToken)
	if len(link) < 1+gcm.NonceSize() || link[0] != linkLive {
		return "", errBadLink
	}
	nonce, sealed := link[1:1+gcm.NonceSize()], link[1+gcm.NonceSize():]
	plain, err := gcm.Open(nil, nonce, sealed, nil)
	if err != nil || !validSessionToken(string(plain)) {
		return "", errBadLink
	}
	return string(plain), nil
}

func (a *Auth) linkCipher(frontendToken string) cipher.AEAD {
	block, err := aes.NewCipher(a.keyed("sessiongate seal", frontendToken))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return gcm
}

// remoteIP is the default Config.ClientIP: the host of RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
