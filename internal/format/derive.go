package format

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// The whole derivation, from the frontend token a client presents to what
// a store keeps. Secret is Config.Secret; H(p, x) is HMAC-SHA256(Secret,
// p NUL x); "|n" keeps the first n bytes; b64 is base64url without
// padding.
//
//	frontend token F ─┬─ selector  S = H("sessiongate selector", F)|16
//	                  │    store key K = b64(S)               22 chars: names the session
//	                  └─ validator V = H("sessiongate validator", F nonce)|16
//	                                                          nonce: 8 random bytes per mint
//	session token   T = b64(S V)                              43 chars: cookie / X-Session-Token
//	verifier          = SHA-256(V)|16                         in the frame: T opens it, it does not give T
//	public id         = b64(SHA-256("sessiongate public id" NUL K NUL nonce)|16)
//	                                                          or the continued session's (record.go)
//	credential id   C = H("sessiongate credential", provider NUL TokenID)|8
//	                                                          zero when the provider names no TokenID
//	mark key          = b64(H("sessiongate credential mark", provider ":" user C)|16)
//	                                                          where a signed-out credential's mark lives
//	user index        = provider ":" user                     the key of a user's session index
//	fingerprint       = H("sessiongate store fingerprint", "") names the secret in the store
//
//	stored at K:  FrameLive verifier nonce C len(record) record scs-values  (frame.go)
//	              or FrameEnded: the mark of an ended session
//
// A session minted again from the same frontend token (after an expiry)
// has the same key and a new nonce: a new session token, which no earlier
// holder knows, and a new public id.

// Secret derives keys from the deployment's secret. It is safe for
// concurrent use.
type Secret struct{ key []byte }

// NewSecret returns the derivations keyed by secret, which it keeps.
func NewSecret(secret []byte) *Secret { return &Secret{key: secret} }

// sum returns H(purpose, token extra).
func (s *Secret) sum(purpose, token string, extra []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(token))
	m.Write(extra)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// Selector returns the selector of the sessions minted from front, a
// frontend token.
func (s *Secret) Selector(front string) Selector {
	sum := s.sum("sessiongate selector", front, nil)
	return Selector(sum[:SelectorLen])
}

// Key returns the store key of the sessions minted from front.
func (s *Secret) Key(front string) string { return s.Selector(front).Key() }

// Token returns the session token of the session minted from front (whose
// selector is sel) with nonce.
func (s *Secret) Token(front string, sel Selector, nonce []byte) string {
	sum := s.sum("sessiongate validator", front, nonce)
	return Token(sel, Validator(sum[:ValidatorLen]))
}

// Credential returns the credential id of a token of provider whose
// TokenID is tokenID: zero when tokenID is "" (the frontend token itself
// then is the credential, and the session's key already stands for it).
func (s *Secret) Credential(provider, tokenID string) (c Credential) {
	if tokenID == "" {
		return c
	}
	sum := s.sum("sessiongate credential", provider+"\x00"+tokenID, nil)
	return Credential(sum[:CredentialLen])
}

// Mark returns the store key of the sign-out mark of credential c of the
// user whose index is user (UserIndex), "" for a zero c. It is derived
// from what every session of the credential keeps, so that ending any of
// them marks every spelling of the credential.
func (s *Secret) Mark(user string, c Credential) string {
	if c == (Credential{}) {
		return ""
	}
	sum := s.sum("sessiongate credential mark", user, c[:])
	return Selector(sum[:SelectorLen]).Key()
}

// Fingerprint names the secret without revealing it: what a store keeps
// to tell processes with another secret.
func (s *Secret) Fingerprint() []byte {
	sum := s.sum("sessiongate store fingerprint", "", nil)
	return sum[:]
}

// UserIndex is the key of a user's session index: users are distinct per
// provider.
func UserIndex(provider, user string) string { return provider + ":" + user }

// PublicID derives a session's public id from its store key and the nonce
// it was minted with: one more one-way hash, 128 bits, so neither the
// token nor the store key can be recovered from it, and a session minted
// again from the same frontend token has another id. A session that
// continues another keeps that one's public id instead (see record.go).
func PublicID(key string, nonce []byte) string {
	sum := sha256.Sum256([]byte("sessiongate public id\x00" + key + "\x00" + string(nonce)))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// publicIDBytes decodes a public id, and reports false for anything else.
func publicIDBytes(id string) (b [16]byte, ok bool) {
	if len(id) != 22 {
		return b, false // Decode would write past b
	}
	n, err := strict.Decode(b[:], []byte(id))
	return b, err == nil && n == 16
}

// NewNonce returns NonceLen bytes from crypto/rand.
func NewNonce() []byte {
	b := make([]byte, NonceLen)
	rand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return b
}

// Equal compares two keys, ids or tokens in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
