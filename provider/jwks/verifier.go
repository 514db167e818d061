package jwks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
	"github.com/sessiongate/sessiongate/provider/internal/timeclaims"
)

// Verifier checks JWTs against an issuer's published key set: encoding
// first, then the signature, then "exp" (required), "nbf", "iat", "aud"
// and, when configured, "iss". It is safe for concurrent use.
//
// A token must be a canonical JWS compact serialization (three parts of
// unpadded base64url with zero trailing bits, a protected header that is
// a JSON object with unique member names); anything else is refused as
// malformed before any key lookup, so a credential has one spelling.
// Keys come only from the configured key set: a token's own "jku", "x5u",
// "jwk" and "x5c" headers are ignored, so a token cannot name the key
// that verifies it. Claims are read only after the signature verified, so
// a badly signed token is refused for its signature whatever it claims,
// and they are read exactly as named: a payload with duplicate member
// names is refused, and "EXP" is not "exp".
type Verifier struct {
	cfg  Config
	algs []string
	keys *keySet
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer    string    // iss; "" when absent
	Subject   string    // sub; "" when absent
	Audience  []string  // aud, one of which is a configured audience
	Expiry    time.Time // exp, which every accepted token has
	NotBefore time.Time // nbf; zero when absent
	IssuedAt  time.Time // iat; zero when absent
	// AuthTime is auth_time, when the user authenticated (OpenID Connect
	// Core §2); zero when absent. Verify refuses a token whose auth_time
	// is out of range or more than Leeway in the future.
	AuthTime time.Time

	// ValidUntil is Expiry plus the configured Leeway (at most
	// provider.MaxTime): the instant from which Verify refuses the token,
	// and what a provider reports as Identity.Expiry.
	ValidUntil time.Time

	// TokenID names the credential, the same for every token with this
	// header and payload however it is signed (see provider.Identity).
	TokenID string

	// All holds every claim of the payload, registered ones included, as
	// decoded JSON.
	All map[string]any
}

// NewVerifier returns a Verifier for cfg; Name, Audiences and a JWKSURL
// (or an Issuer to discover it from) are what it reads. NewVerifier
// panics if Audiences is empty, neither JWKSURL nor Issuer is set, a URL is
// not absolute http(s), or Algorithms names a symmetric or unknown
// algorithm. It makes no network call: keys are fetched on first use.
func NewVerifier(cfg Config) *Verifier {
	cfg = cfg.withDefaults("sessiongate/jwks")
	locate := func(context.Context) (string, error) { return cfg.JWKSURL, nil }
	if cfg.JWKSURL == "" {
		locate = (&discovery{cfg: cfg}).locate
	}
	return &Verifier{
		cfg:  cfg,
		algs: cfg.Algorithms,
		keys: &keySet{
			name:    cfg.Name,
			locate:  locate,
			client:  cfg.HTTPClient,
			timeout: cfg.Timeout,
			refresh: cfg.RefreshInterval,
			maxAge:  cfg.MaxKeyAge,
			now:     cfg.Now,
		},
	}
}

// Verify checks token and returns its claims. Every refusal is an
// ErrInvalidToken (malformed or non-canonical encoding, duplicate member
// names, algorithm not allowed, a key the issuer does not publish, bad
// signature, expired, not yet valid, issued or authenticated in the future, a time claim
// out of range, wrong audience or issuer, no "exp").
//
// ErrUnavailable (an *provider.UnavailableError) means the token cannot
// be checked now: the key set could not be fetched, or the token names a
// key that is not cached and the key set was fetched too recently to be
// fetched again (RetryAfter says when it may be). A token is refused for
// an unknown key only after a key-set fetch that completed after it
// arrived still lacks that key. A token that fails provider.ValidSyntax
// (longer than 8 KiB, say) is refused before any parsing.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if !provider.ValidSyntax(token) {
		return nil, v.invalid("malformed")
	}
	jws, err := strict.ParseJWS(token)
	if err != nil {
		return nil, v.invalid("malformed")
	}
	alg, _ := jws.Header["alg"].(string)
	if !slices.Contains(v.algs, alg) {
		return nil, v.invalid("not a JWS with an allowed algorithm")
	}
	if _, ok := jws.Header["crit"]; ok {
		return nil, v.invalid("critical header parameters are not supported")
	}
	kid, ok := jws.Header["kid"].(string)
	if _, present := jws.Header["kid"]; present && !ok {
		return nil, v.invalid(`"kid" is not a string`)
	}
	keys, err := v.keys.keysFor(ctx, kid, alg)
	if err != nil {
		return nil, err
	}
	verified := false
	for _, k := range keys {
		if verifySignature(k.Key, alg, jws.SigningInput, jws.Signature) {
			verified = true
			break
		}
	}
	if !verified {
		return nil, v.invalid("bad signature")
	}
	c, err := v.check(jws.Payload)
	if err != nil {
		return nil, err
	}
	c.TokenID = jws.TokenID()
	return c, nil
}

// check decodes a verified payload and checks its registered claims, each
// read exactly as named.
func (v *Verifier) check(payload []byte) (*Claims, error) {
	all, err := strict.Object(payload)
	if err != nil {
		return nil, v.invalid("claims are not a JSON object with unique member names")
	}
	times, err := timeclaims.Read(all)
	if err != nil {
		return nil, v.invalid(err.Error())
	}
	if times.Expiry.IsZero() {
		return nil, v.invalid(`no "exp" claim`)
	}
	c := &Claims{
		Expiry:     times.Expiry,
		NotBefore:  times.NotBefore,
		IssuedAt:   times.IssuedAt,
		AuthTime:   times.AuthTime,
		ValidUntil: times.Until(v.cfg.Leeway),
		All:        all,
	}
	for name, dst := range map[string]*string{"iss": &c.Issuer, "sub": &c.Subject, "jti": new(string)} {
		if raw, present := all[name]; present {
			s, ok := raw.(string)
			if !ok {
				return nil, v.invalid(fmt.Sprintf("%q is not a string", name))
			}
			*dst = s
		}
	}
	aud, ok := audience(all["aud"])
	if !ok {
		return nil, v.invalid(`"aud" is not a string or an array of strings`)
	}
	c.Audience = aud
	if reason := times.Check(v.cfg.Now(), v.cfg.Leeway); reason != "" {
		return nil, v.invalid(reason)
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		return nil, v.invalid("issued for another audience")
	}
	if v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer {
		return nil, v.invalid("issued by another issuer")
	}
	return c, nil
}

// audience reads "aud": absent, a string, or an array of strings.
func audience(raw any) ([]string, bool) {
	switch a := raw.(type) {
	case nil:
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func (v *Verifier) invalid(reason string) error {
	return &provider.InvalidTokenError{Provider: v.cfg.Name, Reason: reason}
}
