package provider

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider validates frontend tokens against one identity provider.
//
// Implementations must be safe for concurrent use. Validate must not log or
// return the token, and must classify every failure: errors.Is(err,
// ErrInvalidToken) for a token the provider rejected, errors.Is(err,
// ErrUnavailable) when no answer could be had (network, timeout, 429, 5xx,
// an answer that cannot be parsed). sessiongate caches the first kind for a
// short while and never caches the second.
type Provider interface {
	// Name is the short, stable name recorded in every session minted from
	// this provider, such as "plurality". It holds no ':', which separates
	// it from the user id in the key of a user's index (so that provider
	// "a:b"'s user "c" and provider "a"'s user "b:c" never share one):
	// middleware.New and NewMulti panic otherwise.
	Name() string

	// Validate checks token with the provider and returns who it belongs to.
	Validate(ctx context.Context, token string) (*Identity, error)
}

// Identity is a validated caller: who they are, for whom, and for how long.
type Identity struct {
	// UserID is the provider's stable id for the user, never empty.
	UserID string `json:"id"`

	// Provider is the Name of the provider that validated the token;
	// empty means the Name of the middleware's Config.Provider. A name
	// that holds a ':' is refused when the token is exchanged (401
	// invalid_token, logged at WARN; see Provider.Name).
	Provider string `json:"provider"`

	// Expiry is the last instant at which the provider accepts the token:
	// its "exp" plus the provider's clock-skew leeway (DefaultLeeway unless
	// configured), so that sessiongate, which refuses to mint at or after
	// Expiry and keeps a signed-out token's mark until Expiry, gives the
	// same answer as the provider. The zero value means the provider did
	// not say. Sessions never outlive it. Providers range-check every time
	// value they read (see NumericDate): Expiry is never before 1970 or
	// after MaxTime.
	Expiry time.Time `json:"expiry,omitzero"`

	// TokenID identifies the credential itself, the same for every
	// spelling of the token that the provider accepts: for a JWT, a hash
	// of its canonical signing input (so that another encoding of the same
	// bytes, or another valid signature of the same claims, is the same
	// credential); for an introspected token, its "jti" when the upstream
	// names one. Empty means the provider knows no better than the token
	// string itself. sessiongate keys sign-out marks and "one session per
	// credential" on it. It is not secret, but it is never logged.
	TokenID string `json:"-"`

	// AuthTime is when the user last authenticated at the provider: the
	// token's "auth_time" claim (OpenID Connect Core §2, RFC 9470 §4),
	// read by the providers whose tokens carry it (jwks, introspect);
	// zero when the provider did not say, and then sessiongate records
	// the exchange as the authentication. Providers refuse a token whose
	// "auth_time" is not a NumericDate between 1970 and MaxTime, or lies
	// more than their leeway in the future: it is never after the
	// validation's now + leeway.
	AuthTime time.Time `json:"authTime,omitzero"`

	// IssuedAt is the token's "iat" claim, read by the providers whose
	// tokens carry it (plurality, para's JWTs, jwks); zero when absent.
	// Without an AuthTime, sessiongate records the earlier of IssuedAt
	// and the exchange as the authentication, so that a token kept unused
	// (or exchanged again after its session ended) never counts as a
	// fresh sign-in for step-up. Range-checked like AuthTime.
	IssuedAt time.Time `json:"issuedAt,omitzero"`

	// SessionID is the provider's own id for the sign-in the token came
	// from (Plurality's uniqueSessionId), empty when it has none.
	SessionID string `json:"sessionId,omitempty"`

	// Claims holds the provider's raw claims or profile as decoded JSON.
	Claims map[string]any `json:"claims,omitempty"`
}

// ErrInvalidToken means the token was malformed, rejected or expired.
// The client should sign in again; retrying the same token is pointless.
var ErrInvalidToken = errors.New("provider: invalid token")

// ErrUnavailable means the provider gave no usable answer: it was
// unreachable, too slow, overloaded, or answered something unparseable.
// The token may be fine; the client may retry later.
var ErrUnavailable = errors.New("provider: unavailable")

// UnavailableError is an ErrUnavailable that carries how long the provider
// asked callers to wait (from its Retry-After header), when it said.
type UnavailableError struct {
	// Provider is the provider's Name.
	Provider string
	// Reason says what went wrong, without any token or secret.
	Reason string
	// RetryAfter is the provider's requested wait, zero when it gave none.
	RetryAfter time.Duration
	// Err is the underlying error, when there is one.
	Err error
}

// Error says which provider is unavailable and why, without any token.
func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("provider: %s unavailable: %s", e.Provider, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports that an UnavailableError is an ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// InvalidTokenError is an ErrInvalidToken with the reason the token was
// refused, for logs. The reason never contains the token.
type InvalidTokenError struct {
	// Provider is the provider's Name.
	Provider string
	// Reason says why, such as "rejected upstream (401)" or "expired".
	Reason string
}

// Error says which provider refused the token and why, without the token.
func (e *InvalidTokenError) Error() string {
	return fmt.Sprintf("provider: %s: invalid token: %s", e.Provider, e.Reason)
}

// Is reports that an InvalidTokenError is an ErrInvalidToken.
func (e *InvalidTokenError) Is(target error) bool { return target == ErrInvalidToken }
