package provider

import (
	"encoding/json"
	"errors"
	"math"
	"time"
)

// DefaultLeeway is the clock skew every provider tolerates by default on
// the time claims it checks ("exp", "nbf", "iat"), and adds to a token's
// "exp" to make Identity.Expiry: one clock-skew policy from the provider's
// check to sessiongate's mint and sign-out marks.
const DefaultLeeway = 30 * time.Second

// MaxTime is the latest time any provider reports (the end of the year
// 9999 UTC): a time claim past it is refused as malformed, so that no
// later arithmetic on it (durations, milliseconds, TTLs) can overflow.
var MaxTime = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)

// ErrBadNumericDate is NumericDate's error for a value that is not an RFC
// 7519 NumericDate within range.
var ErrBadNumericDate = errors.New("provider: not a NumericDate between 1970 and 9999")

// NumericDate reads an RFC 7519 NumericDate (seconds since the epoch,
// possibly fractional) as decoded JSON (float64 or json.Number), refusing
// anything that is not a finite number between 0 and MaxTime: upstream
// numbers are range-checked before any arithmetic.
func NumericDate(v any) (time.Time, error) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return time.Time{}, ErrBadNumericDate
		}
	default:
		return time.Time{}, ErrBadNumericDate
	}
	if math.IsNaN(f) || f < 0 || f > float64(MaxTime.Unix()) {
		return time.Time{}, ErrBadNumericDate
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
