package jwks

import (
	"context"
	"fmt"

	"github.com/sessiongate/sessiongate/provider"
)

// Provider validates an OIDC-style issuer's JWTs locally, against the
// issuer's key set: no call per token, only key-set fetches. It is safe for
// concurrent use.
type Provider struct {
	verifier *Verifier
}

// New returns a Provider for cfg. New panics if Issuer or Audiences is
// empty, or for anything NewVerifier panics on. It makes no network call.
func New(cfg Config) *Provider {
	if cfg.Issuer == "" {
		panic("sessiongate/jwks: Config.Issuer is required")
	}
	return &Provider{verifier: NewVerifier(cfg)}
}

// Name returns Config.Name.
func (p *Provider) Name() string { return p.verifier.cfg.Name }

// Validate verifies token (see Verifier.Verify) and returns its Identity:
// the user id from Config.UserIDClaim, Expiry = "exp" + Leeway, TokenID
// from the token's canonical signing input (the same for every spelling
// and every valid signature of these claims), AuthTime from "auth_time"
// when present (zero otherwise), the issuer's session id
// from "sid" when present, and every claim.
func (p *Provider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	c, err := p.verifier.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	claim := p.verifier.cfg.UserIDClaim
	id := provider.StringClaim(c.All, claim)
	if id == "" {
		return nil, p.verifier.invalid(fmt.Sprintf("no %q claim to name the user", claim))
	}
	return &provider.Identity{
		UserID:    id,
		Provider:  p.Name(),
		Expiry:    c.ValidUntil,
		AuthTime:  c.AuthTime,
		IssuedAt:  c.IssuedAt,
		TokenID:   c.TokenID,
		SessionID: provider.StringClaim(c.All, "sid"),
		Claims:    c.All,
	}, nil
}
