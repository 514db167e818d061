package middleware

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// Session is one signed-in session as its owner may see it. Nothing in it
// lets its holder obtain a session token: ID is a one-way hash of the
// token's store key, which names the session but does not open it.
type Session struct {
	// ID is the session's public id, safe to show and to put in URLs.
	ID string
	// Identity is who the session belongs to.
	Identity provider.Identity
	// Created is when the device first signed in: when the session was
	// minted, or, for a session that continues another (a new sign-in of
	// the same user on the same device), that one's Created. No activity
	// extends a session past Expires.
	Created time.Time
	// LastSeen is the last recorded activity.
	LastSeen time.Time
	// Expires is when the session ends: Created plus the manager's
	// Lifetime, or the frontend token's expiry if that came first.
	Expires time.Time
	// ClientIP is the address the session was minted from.
	ClientIP string
	// UserAgent is the User-Agent the session was minted with.
	UserAgent string
	// Current is true when this is the session of the request at hand.
	Current bool

	key   string                    // store key
	nonce []byte                    // the nonce it was minted with (store.Mint.Nonce)
	cred  [store.CredentialLen]byte // credential id (store.Mint.Credential)
	preds []predecessor             // the sessions it continues (see predecessor)
}

// predecessor is a session that a session continues (the same device
// signed in again with another frontend token): what its sign-out must
// mark too, so that the tokens the device used are signed out with it.
type predecessor struct {
	key   string                    // its store key: its frontend token's
	cred  [store.CredentialLen]byte // its credential id
	until time.Time                 // how long its marks must last (markUntil)
}

// maxPredecessors bounds the predecessors a session keeps: those whose
// token expired are dropped first, then the oldest. A device that signed
// in again more often than this within one token's life has its oldest
// tokens out of reach of its sign-out.
const maxPredecessors = 16

// continues reports whether s continues the session of store key key.
func (s *Session) continues(key string) bool {
	for _, p := range s.preds {
		if p.key == key {
			return true
		}
	}
	return false
}

// MarshalJSON encodes the public view of the session: its public id, the
// user's id and provider, times, client (raw and parsed User-Agent) and
// whether it is the current one.
// Claims, store keys and token hashes are left out.
func (s *Session) MarshalJSON() ([]byte, error) {
	return json.Marshal(sessionView{
		ID:        s.ID,
		UserID:    s.Identity.UserID,
		Provider:  s.Identity.Provider,
		Created:   s.Created.UTC(),
		LastSeen:  s.LastSeen.UTC(),
		Expires:   s.Expires.UTC(),
		ClientIP:  s.ClientIP,
		UserAgent: s.UserAgent,
		Device:    ParseUserAgent(s.UserAgent),
		Current:   s.Current,
	})
}

type sessionView struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	Provider  string    `json:"provider"`
	Created   time.Time `json:"created"`
	LastSeen  time.Time `json:"lastSeen"`
	Expires   time.Time `json:"expires"`
	ClientIP  string    `json:"ip,omitempty"`
	UserAgent string    `json:"userAgent,omitempty"`
	Device    UserAgent `json:"device"`
	Current   bool      `json:"current"`
}

// publicID derives a session's public id from its store key and the nonce
// it was minted with: one more one-way hash, 128 bits, so neither the
// token nor the store key can be recovered from it, and a session minted
// again from the same frontend token has another id. A session that
// continues another keeps that one's public id instead (see record.go).
func publicID(key string, nonce []byte) string {
	sum := sha256.Sum256([]byte("sessiongate public id\x00" + key + "\x00" + string(nonce)))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// publicIDBytes decodes a public id.
func publicIDBytes(id string) (b [16]byte, ok bool) {
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(id))
	return b, err == nil && n == 16 && len(id) == 22
}

// indexKey is the key of the user's session index: users are distinct per
// provider.
func indexKey(id provider.Identity) string {
	return id.Provider + ":" + id.UserID
}
