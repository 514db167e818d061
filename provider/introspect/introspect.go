package introspect

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
	"github.com/sessiongate/sessiongate/provider/internal/timeclaims"
)

// DefaultName is the provider name when Config.Name is empty.
const DefaultName = "introspect"

// Config configures an RFC 7662 introspection provider. Printing a Config
// never shows the client secret.
type Config struct {
	// Name is the provider name recorded in sessions, without a ':'
	// (provider.Provider.Name). Default DefaultName.
	Name string

	// URL is the introspection endpoint. Required.
	URL string

	// ClientID and ClientSecret authenticate this server to the
	// endpoint with HTTP Basic (client_secret_basic, RFC 6749 §2.3.1).
	// Required.
	ClientID     string
	ClientSecret provider.Secret // see ClientID

	// TokenTypeHint is sent as token_type_hint. Default "access_token".
	TokenTypeHint string

	// UserIDClaim is the member of the answer that holds the user's id.
	// Default "sub".
	UserIDClaim string

	// Audiences, when set, requires the answer's "aud" to name one of
	// them: a token issued for another resource server is refused.
	Audiences []string

	// Issuer, when set, requires the answer's "iss" to equal it.
	Issuer string

	// HTTPClient sends the introspection calls. Default
	// provider.NewHTTPClient(Timeout).
	HTTPClient *http.Client

	// Timeout bounds one call when HTTPClient is nil.
	// Default provider.DefaultTimeout (5 s).
	Timeout time.Duration

	// Leeway is the clock skew tolerated on the answer's "exp" and "nbf":
	// a token is refused from exp + Leeway on, or while now + Leeway is
	// before nbf, and Identity.Expiry is exp + Leeway. Default
	// provider.DefaultLeeway (30 s).
	Leeway time.Duration

	// Now is the clock used to check "exp" and "nbf". Default time.Now.
	Now func() time.Time
}

// maxJTI bounds the "jti" an answer may name to be used as the TokenID.
const maxJTI = 256

// Provider validates opaque (or any) tokens by asking the authorization
// server's introspection endpoint, once per token. It is safe for
// concurrent use.
type Provider struct {
	cfg           Config           // ClientSecret cleared: it lives in authorization
	authorization *provider.Secret // the Authorization header, Basic credentials
}

// New returns a Provider for cfg. New panics if URL, ClientID or
// ClientSecret is empty, or URL is not an absolute http(s) URL. It makes no
// network call.
func New(cfg Config) *Provider {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		panic("sessiongate/introspect: Config.ClientID and Config.ClientSecret are required")
	}
	if _, err := provider.CheckURL(cfg.URL, true); err != nil {
		panic("sessiongate/introspect: Config.URL: " + err.Error())
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.TokenTypeHint == "" {
		cfg.TokenTypeHint = "access_token"
	}
	if cfg.UserIDClaim == "" {
		cfg.UserIDClaim = "sub"
	}
	cfg.Audiences = slices.Clone(cfg.Audiences)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = provider.NewHTTPClient(cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = provider.DefaultLeeway
	}
	// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
	creds := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(string(cfg.ClientSecret))))
	authorization := new(provider.Secret("Basic " + creds))
	cfg.ClientSecret = ""
	return &Provider{cfg: cfg, authorization: authorization}
}

// Name returns Config.Name.
func (p *Provider) Name() string { return p.cfg.Name }

// Validate introspects token (POST, form token=...&token_type_hint=...,
// client authentication). An answer with "active": true names the user
// (Config.UserIDClaim); its "exp" + Leeway becomes the Identity's Expiry;
// its "jti", when it is a string of 1 to 256 bytes, the Identity's TokenID
// ("jti:" + jti; otherwise TokenID is empty and sessiongate knows the
// credential only by its exact string); the whole answer is kept as
// claims. Members are read exactly as named ("EXP" is not "exp"), and
// "exp", "nbf", "iat" and "auth_time" must be NumericDates between 1970
// and 9999. "auth_time" (registered for introspection answers by RFC
// 9470 §6.2) becomes the Identity's AuthTime; one more than Leeway in the
// future is ErrInvalidToken.
//
// "active": false, an expired "exp", a future "nbf", a time member out of
// range, or a wrong audience or issuer is ErrInvalidToken, and so is a
// token shaped like a JWS but not canonically encoded (refused before any
// call: it is a second spelling of some token). A 401 or 403 means the
// endpoint refused this server's credentials, and is ErrUnavailable like
// every other status but 200 (a redirect is never followed), and like an
// answer that is not a JSON object with unique member names and a boolean
// "active".
func (p *Provider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	if !provider.ValidSyntax(token) || strict.NonCanonicalJWS(token) {
		return nil, p.invalid("malformed")
	}
	form := url.Values{"token": {token}, "token_type_hint": {p.cfg.TokenTypeHint}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &provider.UnavailableError{Provider: p.cfg.Name, Reason: "building the request failed", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", string(*p.authorization))

	resp, answer, err := provider.Do(p.cfg.HTTPClient, req, p.cfg.Name)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return p.identity(answer)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, &provider.UnavailableError{Provider: p.cfg.Name, Reason: fmt.Sprintf("the endpoint refused this server's credentials (%d): check the configuration", resp.StatusCode)}
	default:
		return nil, provider.StatusUnavailable(p.cfg.Name, resp)
	}
}

// identity reads an RFC 7662 answer.
func (p *Provider) identity(answer []byte) (*provider.Identity, error) {
	claims, err := strict.Object(answer)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: p.cfg.Name, Reason: "answer is not a JSON object with unique member names"}
	}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, &provider.UnavailableError{Provider: p.cfg.Name, Reason: `answer has no boolean "active"`}
	}
	if !active {
		return nil, p.invalid("inactive")
	}
	times, err := timeclaims.Read(claims)
	if err != nil {
		return nil, p.invalid(err.Error())
	}
	times.IssuedAt = time.Time{} // an introspected token's "iat" is informative only
	if reason := times.Check(p.cfg.Now(), p.cfg.Leeway); reason != "" {
		return nil, p.invalid(reason)
	}
	id := &provider.Identity{Provider: p.cfg.Name, Expiry: times.Until(p.cfg.Leeway), AuthTime: times.AuthTime, Claims: claims}
	if p.cfg.Issuer != "" && claims["iss"] != p.cfg.Issuer {
		return nil, p.invalid("issued by another issuer")
	}
	if len(p.cfg.Audiences) > 0 && !provider.ClaimIn(claims, "aud", p.cfg.Audiences...) {
		return nil, p.invalid("issued for another audience")
	}
	if id.UserID = provider.StringClaim(claims, p.cfg.UserIDClaim); id.UserID == "" {
		return nil, p.invalid(fmt.Sprintf("the answer has no %q to name the user", p.cfg.UserIDClaim))
	}
	if jti, ok := claims["jti"].(string); ok && jti != "" && len(jti) <= maxJTI {
		id.TokenID = "jti:" + jti
	}
	id.SessionID = provider.StringClaim(claims, "sid")
	return id, nil
}

func (p *Provider) invalid(reason string) error {
	return &provider.InvalidTokenError{Provider: p.cfg.Name, Reason: reason}
}
