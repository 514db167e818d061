package para

import (
	"context"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/jwks"
)

// JWTProvider verifies Para-issued JWTs (from the frontend's issueJwt())
// locally against {BaseURL}/.well-known/jwks.json: no call to Para per
// token, only key-set fetches (see jwks.Verifier for the rules). It is
// safe for concurrent use.
type JWTProvider struct {
	verifier *jwks.Verifier
}

// NewJWT returns a JWTProvider for cfg. NewJWT panics if APIKeyID is empty
// or BaseURL is neither an environment nor an absolute http(s) URL. It
// makes no network call: keys are fetched on first use.
func NewJWT(cfg Config) *JWTProvider {
	if cfg.APIKeyID == "" {
		panic("sessiongate/para: Config.APIKeyID is required: it is the aud of the app's JWTs")
	}
	base, err := BaseURL(cfg.BaseURL)
	if err != nil {
		panic("sessiongate/" + err.Error())
	}
	return &JWTProvider{verifier: jwks.NewVerifier(jwks.Config{
		Name:            Name,
		JWKSURL:         base + "/.well-known/jwks.json",
		Audiences:       []string{cfg.APIKeyID},
		Leeway:          cfg.Leeway,
		RefreshInterval: cfg.RefreshInterval,
		HTTPClient:      cfg.HTTPClient,
		Timeout:         cfg.Timeout,
		Now:             cfg.Now,
	})}
}

// Name returns "para".
func (p *JWTProvider) Name() string { return Name }

// Validate verifies a Para JWT: signature from Para's key set, "aud" equal
// to APIKeyID, "exp" (required), "nbf" and "iat" within the leeway (see
// jwks.Verifier for every rule). The user id is "sub" (Para's user id);
// the Identity's Expiry is "exp" + Leeway, so a session never outlives
// the JWT (30 minutes unless the API key's session length says
// otherwise); its TokenID comes from the canonical signing input, the same
// for every spelling and every valid signature of these claims; its
// claims are the token's "data" object
// (userId, wallets, email/phone/telegramUserId/farcasterUsername/
// externalWalletAddress, authType, identifier, oAuthMethod). A token whose
// data.userId differs from its sub is refused.
func (p *JWTProvider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	c, err := p.verifier.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	sub := provider.StringClaim(c.All, "sub")
	if sub == "" {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: `no "sub" claim`}
	}
	data, _ := c.All["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	if uid, ok := data["userId"]; ok && uid != sub {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "data.userId differs from sub"}
	}
	return &provider.Identity{UserID: sub, Provider: Name, Expiry: c.ValidUntil, IssuedAt: c.IssuedAt, TokenID: c.TokenID, Claims: data}, nil
}
