package provider

import (
	"errors"
	"slices"
	"strconv"

	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// errNotJWT is UnverifiedClaims' answer for anything that is not a JWT
// with a JSON object for its payload.
var errNotJWT = errors.New("provider: token is not a JWT with a JSON object payload")

// UnverifiedClaims decodes the payload of a JWT WITHOUT checking its
// signature. Use it only to read what an upstream has already vouched for,
// or to choose which provider should verify a token (see ClaimMatches);
// never to trust it.
//
// The token must be a canonical JWS compact serialization: three non-empty
// parts of unpadded base64url with zero trailing bits (so that no second
// spelling of a token is read), a header and a payload that are JSON
// objects with unique member names at every depth. Claims are keyed
// exactly as the payload names them: "EXP" is not "exp". Tokens that fail
// ValidSyntax are refused before any decoding, so the work is bounded by
// MaxTokenSize.
func UnverifiedClaims(token string) (map[string]any, error) {
	if !ValidSyntax(token) {
		return nil, errNotJWT
	}
	jws, err := strict.ParseJWS(token)
	if err != nil {
		return nil, errNotJWT
	}
	claims, err := strict.Object(jws.Payload)
	if err != nil {
		return nil, errNotJWT
	}
	return claims, nil
}

// StringClaim returns claims[name] as a string when it is a non-empty
// string of at most 256 bytes or an integral number (ids are sometimes
// numeric), and "" otherwise.
func StringClaim(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		if len(v) <= 256 {
			return v
		}
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
	}
	return ""
}

// ClaimIn reports whether claims has name and, when values are given,
// whether it equals one of them; for an array claim such as "aud", whether
// any element of it does.
func ClaimIn(claims map[string]any, name string, values ...string) bool {
	v, ok := claims[name]
	if !ok || v == nil {
		return false
	}
	if len(values) == 0 {
		return true
	}
	switch v := v.(type) {
	case string:
		return slices.Contains(values, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && slices.Contains(values, s) {
				return true
			}
		}
	}
	return false
}
