package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sessiongate/sessiongate/provider"
)

// Verifier checks JWTs against an issuer's published key set: signature
// first, then "exp" (required), "nbf", "iat", "aud" and, when configured,
// "iss". It is safe for concurrent use.
//
// Keys come only from the configured key set: a token's own "jku", "x5u",
// "jwk" and "x5c" headers are ignored, so a token cannot name the key
// that verifies it. Claims are read only after the signature verified, so
// a badly signed token is refused for its signature whatever it claims.
type Verifier struct {
	cfg  Config
	algs []jose.SignatureAlgorithm
	keys *keySet
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub
	Audience  []string  // aud, one of which is a configured audience
	Expiry    time.Time // exp, which every accepted token has
	NotBefore time.Time // nbf; zero when absent
	IssuedAt  time.Time // iat; zero when absent

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
		algs: cfg.signatureAlgorithms(),
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
// ErrInvalidToken (malformed, algorithm not allowed, unknown key, bad
// signature, expired, not yet valid, issued in the future, wrong audience
// or issuer, no "exp"); ErrUnavailable means the keys could not be fetched.
// A token that fails provider.ValidSyntax (longer than 8 KiB, say) is
// refused before any parsing.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if !provider.ValidSyntax(token) || strings.Count(token, ".") != 2 {
		return nil, v.invalid("malformed")
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, v.invalid("not a JWS with an allowed algorithm")
	}
	header := jws.Signatures[0].Protected
	keys, err := v.keys.keysFor(ctx, header.KeyID, header.Algorithm)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if err != nil {
		return nil, v.invalid("bad signature")
	}
	return v.check(payload)
}

// check decodes a verified payload and checks its time and audience claims.
func (v *Verifier) check(payload []byte) (*Claims, error) {
	var std jwt.Claims
	var all map[string]any
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &all) != nil || all == nil {
		return nil, v.invalid("claims are not a JSON object of the registered types")
	}
	if std.Expiry == nil {
		return nil, v.invalid(`no "exp" claim`)
	}
	err := std.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: v.cfg.Audiences,
		Time:        v.cfg.Now(),
	}, v.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, v.invalid("expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, v.invalid("not valid yet")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, v.invalid("issued in the future")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, v.invalid("issued for another audience")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, v.invalid("issued by another issuer")
	case err != nil:
		return nil, v.invalid("claims refused")
	}
	c := &Claims{
		Issuer:   std.Issuer,
		Subject:  std.Subject,
		Audience: std.Audience,
		Expiry:   std.Expiry.Time(),
		All:      all,
	}
	if std.NotBefore != nil {
		c.NotBefore = std.NotBefore.Time()
	}
	if std.IssuedAt != nil {
		c.IssuedAt = std.IssuedAt.Time()
	}
	return c, nil
}

func (v *Verifier) invalid(reason string) error {
	return &provider.InvalidTokenError{Provider: v.cfg.Name, Reason: reason}
}
