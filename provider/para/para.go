package para

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// Name is the provider name recorded in sessions Para validated, by
// verification token or by JWT.
const Name = "para"

// Para's environments.
const (
	BetaURL = "https://api.beta.getpara.com"
	ProdURL = "https://api.getpara.com"
)

// Config configures the Para providers. Printing a Config never shows the
// secret key.
type Config struct {
	// BaseURL is Para's API root: an environment name, "BETA" or "PROD"
	// (any case), or an absolute http(s) URL. Default ProdURL.
	BaseURL string

	// SecretAPIKey is the secret API key from Para's developer portal,
	// sent as x-external-api-key to /sessions/verify and /wallets/verify.
	// Required by New; unused by NewJWT.
	SecretAPIKey provider.Secret

	// APIKeyID is the unique id of the app's API key: the "aud" every Para
	// JWT for this app carries. Required by NewJWT; unused by New.
	APIKeyID string

	// Leeway is the clock skew tolerated on a JWT's "exp", "nbf" and
	// "iat": a JWT is refused from exp + Leeway on, and Identity.Expiry is
	// exp + Leeway. Default provider.DefaultLeeway (30 s). Verification
	// tokens carry no time.
	Leeway time.Duration

	// RefreshInterval is the least time between two fetches of the JWKS
	// caused by JWTs naming a key not yet cached. Default
	// jwks.DefaultRefreshInterval (5 min).
	RefreshInterval time.Duration

	// HTTPClient sends every call to Para. Default
	// provider.NewHTTPClient(Timeout): bounded, no cross-host redirects.
	HTTPClient *http.Client

	// Timeout bounds one call when HTTPClient is nil.
	// Default provider.DefaultTimeout (5 s).
	Timeout time.Duration

	// Now is the clock for JWT checks. Default time.Now.
	Now func() time.Time
}

// BaseURL returns the API root for an environment name ("BETA" or "PROD",
// any case; "" is PROD) or an absolute http(s) URL, which it returns
// without a trailing slash.
func BaseURL(envOrURL string) (string, error) {
	switch strings.ToUpper(envOrURL) {
	case "", "PROD":
		return ProdURL, nil
	case "BETA":
		return BetaURL, nil
	}
	if _, err := provider.CheckURL(envOrURL, true); err != nil {
		return "", fmt.Errorf("para: the base URL is neither BETA, PROD nor usable: %w", err)
	}
	return strings.TrimSuffix(envOrURL, "/"), nil
}

// Provider validates Para verification tokens with POST /sessions/verify,
// and verifies wallet addresses. It is safe for concurrent use.
type Provider struct {
	base   string
	key    *provider.Secret // the secret API key
	client *http.Client
}

// New returns a Provider of verification tokens for cfg. New panics if
// SecretAPIKey is empty or BaseURL is neither an environment nor an
// absolute http(s) URL. It makes no network call.
func New(cfg Config) *Provider {
	if cfg.SecretAPIKey == "" {
		panic("sessiongate/para: Config.SecretAPIKey is required")
	}
	base, err := BaseURL(cfg.BaseURL)
	if err != nil {
		panic("sessiongate/" + err.Error())
	}
	client := cfg.HTTPClient
	if client == nil {
		client = provider.NewHTTPClient(cfg.Timeout)
	}
	return &Provider{base: base, key: new(cfg.SecretAPIKey), client: client}
}

// Name returns "para".
func (p *Provider) Name() string { return Name }

// Validate asks Para whether a verification token (from the frontend's
// para.getVerificationToken()) is live. The user id is authType + ":" +
// identifier, such as "email:ada@example.com": Para's answer names no
// other id, and this one is stable across sign-ins. Claims hold authType,
// identifier and, when Para names it, oAuthMethod. Para's answer carries
// no expiry, so the session lives for the middleware's lifetime.
//
// The Identity's TokenID is empty: Para's answer names the user, not the
// token, so sessiongate knows the credential only by its exact string. A
// token shaped like a JWS but not canonically encoded is refused before
// any call, as a second spelling of some token.
//
// 403 (expired), 400 and 404 are ErrInvalidToken; 401 means Para refused
// the secret key, a configuration fault, and is ErrUnavailable like 429,
// 5xx, a redirect (never followed) and answers that are not the
// documented JSON.
func (p *Provider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	if !provider.ValidSyntax(token) || strict.NonCanonicalJWS(token) {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed"}
	}
	resp, answer, err := p.post(ctx, "/sessions/verify", struct {
		VerificationToken string `json:"verificationToken"`
	}{token})
	if err != nil {
		return nil, err
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return parseVerification(answer)
	case code == http.StatusForbidden:
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "expired (403)"}
	case code == http.StatusBadRequest, code == http.StatusNotFound:
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: fmt.Sprintf("rejected upstream (%d)", code)}
	default:
		return nil, p.refused(resp)
	}
}

// parseVerification builds the Identity from /sessions/verify's answer:
// {"authType": ..., "identifier": ..., "oAuthMethod"?: ...}, members read
// exactly as named, duplicates refused.
func parseVerification(answer []byte) (*provider.Identity, error) {
	obj, err := strict.Object(answer)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "answer is not the documented JSON"}
	}
	var a struct{ AuthType, Identifier, OAuthMethod string }
	var ok [3]bool
	a.AuthType, ok[0] = stringMember(obj, "authType")
	a.Identifier, ok[1] = stringMember(obj, "identifier")
	a.OAuthMethod, ok[2] = stringMember(obj, "oAuthMethod")
	if !ok[0] || !ok[1] || !ok[2] {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "answer is not the documented JSON"}
	}
	if a.AuthType == "" || a.Identifier == "" || len(a.AuthType) > 64 || len(a.Identifier) > 256 || len(a.OAuthMethod) > 64 {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "answer lacks a usable authType and identifier"}
	}
	claims := map[string]any{"authType": a.AuthType, "identifier": a.Identifier}
	if a.OAuthMethod != "" {
		claims["oAuthMethod"] = a.OAuthMethod
	}
	return &provider.Identity{UserID: a.AuthType + ":" + a.Identifier, Provider: Name, Claims: claims}, nil
}

// stringMember returns obj[name] and true when it is a string, "" and
// true when it is absent or null, and false for any other type.
func stringMember(obj map[string]any, name string) (string, bool) {
	switch v := obj[name].(type) {
	case nil:
		return "", true
	case string:
		return v, true
	}
	return "", false
}

// post sends body as JSON to path with the secret key.
func (p *Provider) post(ctx context.Context, path string, body any) (*http.Response, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, &provider.UnavailableError{Provider: Name, Reason: "encoding the request failed", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, &provider.UnavailableError{Provider: Name, Reason: "building the request failed", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-External-Api-Key", string(*p.key))
	return provider.Do(p.client, req, Name)
}

// refused classifies an answer that is neither success nor the token's
// fault: 401 is a refused secret key; the rest follow the shared rules.
func (p *Provider) refused(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return &provider.UnavailableError{Provider: Name, Reason: "Para refused the secret API key (401): check the configuration"}
	}
	return provider.StatusUnavailable(Name, resp)
}
