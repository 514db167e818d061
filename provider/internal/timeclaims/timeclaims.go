// Package timeclaims reads the registered time claims of a JWT payload or
// an introspection answer, exactly as named and range-checked, and applies
// sessiongate's one clock-skew policy to them.
package timeclaims

import (
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/provider"
)

// Times are the time claims a provider reads, each zero when absent.
type Times struct {
	Expiry    time.Time // "exp"
	NotBefore time.Time // "nbf"
	IssuedAt  time.Time // "iat"
	AuthTime  time.Time // "auth_time"
}

// names are the claims Read reads, each exactly as written here.
var names = []string{"exp", "nbf", "iat", "auth_time"}

// Read reads "exp", "nbf", "iat" and "auth_time" from claims (decoded JSON
// with exact member names) through provider.NumericDate. A claim that is
// present but not a NumericDate between 1970 and provider.MaxTime is an
// error naming the claim (a null is present).
func Read(claims map[string]any) (Times, error) {
	var t Times
	dst := []*time.Time{&t.Expiry, &t.NotBefore, &t.IssuedAt, &t.AuthTime}
	for i, name := range names {
		v, ok := claims[name]
		if !ok {
			continue
		}
		d, err := provider.NumericDate(v)
		if err != nil {
			return Times{}, fmt.Errorf("%q is not a NumericDate between 1970 and 9999", name)
		}
		*dst[i] = d
	}
	return t, nil
}

// Check applies the one leeway policy at now: the token is expired when
// now is at or after Expiry + leeway, not valid yet when now + leeway is
// before NotBefore, and issued in the future when IssuedAt is after now +
// leeway, and authenticated in the future when AuthTime is after now +
// leeway. It returns the reason for the first that holds, or "".
func (t Times) Check(now time.Time, leeway time.Duration) string {
	switch {
	case !t.Expiry.IsZero() && !now.Before(t.Expiry.Add(leeway)):
		return "expired"
	case !t.NotBefore.IsZero() && now.Add(leeway).Before(t.NotBefore):
		return "not valid yet"
	case !t.IssuedAt.IsZero() && t.IssuedAt.After(now.Add(leeway)):
		return "issued in the future"
	case !t.AuthTime.IsZero() && t.AuthTime.After(now.Add(leeway)):
		return "authenticated in the future"
	}
	return ""
}

// Until returns Expiry + leeway (at most provider.MaxTime), the
// Identity.Expiry of a token with these times, or zero when it has no
// "exp".
func (t Times) Until(leeway time.Duration) time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	if until := t.Expiry.Add(leeway); until.Before(provider.MaxTime) {
		return until
	}
	return provider.MaxTime
}
