package middleware

import (
	"encoding/json"
	"time"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/useragent"
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
	// LastSeen is the last recorded activity (recorded at most once per
	// Config.KeepAliveInterval, and only with IdleTimeout or
	// MaxSessionsPerUser set; else when the session was minted).
	LastSeen time.Time
	// AuthTime is when the user last authenticated at the provider: the
	// frontend token's auth_time when the provider reads one, else when
	// the token was exchanged. A new token sent with the session renews it
	// (see RequireRecentAuth).
	AuthTime time.Time
	// Expires is when the session ends: Created plus Config.Lifetime, or
	// the frontend token's expiry if that came first.
	Expires time.Time
	// ClientIP is the address the session was minted from.
	ClientIP string
	// UserAgent is the User-Agent the session was minted with.
	UserAgent string
	// Current is true when this is the session of the request at hand.
	Current bool

	s *format.Session // what the engine knows of it
}

// view returns the public view of s.
func view(s *format.Session, current bool) Session {
	return Session{
		ID:        s.ID,
		Identity:  s.Identity,
		Created:   s.Created,
		LastSeen:  s.LastSeen,
		AuthTime:  s.AuthTime,
		Expires:   s.Expires,
		ClientIP:  s.ClientIP,
		UserAgent: s.UserAgent,
		Current:   current,
		s:         s,
	}
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
		AuthTime:  s.AuthTime.UTC(),
		Expires:   s.Expires.UTC(),
		ClientIP:  s.ClientIP,
		UserAgent: s.UserAgent,
		Device:    useragent.Parse(s.UserAgent),
		Current:   s.Current,
	})
}

type sessionView struct {
	ID        string              `json:"id"`
	UserID    string              `json:"userId"`
	Provider  string              `json:"provider"`
	Created   time.Time           `json:"created"`
	LastSeen  time.Time           `json:"lastSeen"`
	AuthTime  time.Time           `json:"authTime"`
	Expires   time.Time           `json:"expires"`
	ClientIP  string              `json:"ip,omitempty"`
	UserAgent string              `json:"userAgent,omitempty"`
	Device    useragent.UserAgent `json:"device"`
	Current   bool                `json:"current"`
}
