package plurality

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
)

// Name is the provider name recorded in sessions Plurality validated.
const Name = "plurality"

// DefaultBaseURL is Plurality's production API.
const DefaultBaseURL = "https://app.plurality.network/api"

// Config configures a Plurality provider. The zero value is not usable:
// ClientID and ClientSecret are required. Printing a Config never shows the
// secret.
type Config struct {
	// BaseURL is the API root; "/user/validate" is appended.
	// Default DefaultBaseURL.
	BaseURL string

	// ClientID is the app's client id from Plurality's developer dashboard.
	ClientID string

	// ClientSecret is the app's client secret. It never leaves the backend:
	// it is sent only in the Authorization header of the validate call.
	ClientSecret provider.Secret

	// HTTPClient sends the validate calls. Default
	// provider.NewHTTPClient(Timeout): bounded, no cross-host redirects.
	HTTPClient *http.Client

	// Timeout bounds one validate call when HTTPClient is nil.
	// Default provider.DefaultTimeout (5 s).
	Timeout time.Duration

	// Now is the clock used to check the token's expiry. Default time.Now.
	Now func() time.Time
}

// Provider validates Plurality tokens. It is safe for concurrent use.
type Provider struct {
	validateURL string
	auth        *basicAuth // behind a pointer so %v of a Provider shows an address, not the secret
	client      *http.Client
	now         func() time.Time
}

type basicAuth struct{ header string }

// New returns a Provider for cfg. New panics if ClientID or ClientSecret is
// empty, or BaseURL is not an absolute http(s) URL: those are programming
// errors, not runtime conditions.
func New(cfg Config) *Provider {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		panic("sessiongate/plurality: Config.ClientID and Config.ClientSecret are required")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		panic(fmt.Sprintf("sessiongate/plurality: Config.BaseURL %q is not an absolute http(s) URL", base))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = provider.NewHTTPClient(cfg.Timeout)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	creds := base64.StdEncoding.EncodeToString([]byte(cfg.ClientID + ":" + string(cfg.ClientSecret)))
	return &Provider{
		validateURL: strings.TrimSuffix(base, "/") + "/user/validate",
		auth:        &basicAuth{header: "Basic " + creds},
		client:      client,
		now:         now,
	}
}

// Name returns "plurality".
func (p *Provider) Name() string { return Name }

// Validate asks Plurality whether token is valid and returns its Identity.
// Tokens that are not even syntactically tokens are refused without a call.
func (p *Provider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	if !provider.ValidSyntax(token) {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed"}
	}
	body, err := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	if err != nil {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.validateURL, bytes.NewReader(body))
	if err != nil {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "building the request failed", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", p.auth.header)

	resp, answer, err := provider.Do(p.client, req, Name)
	if err != nil {
		return nil, err
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return p.identity(token, answer)
	case code == http.StatusBadRequest, code == http.StatusUnauthorized,
		code == http.StatusForbidden, code == http.StatusNotFound:
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: fmt.Sprintf("rejected upstream (%d)", code)}
	default:
		return nil, provider.StatusUnavailable(Name, resp)
	}
}

// identity builds the Identity from a 2xx answer and the token's payload.
func (p *Provider) identity(token string, answer []byte) (*provider.Identity, error) {
	profile, err := parseAnswer(answer)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "answer is not JSON"}
	}
	claims, err := provider.UnverifiedClaims(token)
	if err != nil {
		// Plurality accepted a token that is not the documented JWT. The
		// answer may still name the user.
		claims = map[string]any{}
	}
	id := userID(profile)
	if id == "" {
		id = provider.StringClaim(claims, "id")
	}
	if id == "" {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "neither the answer nor the token names a user"}
	}
	ident := &provider.Identity{
		UserID:    id,
		Provider:  Name,
		SessionID: provider.StringClaim(claims, "uniqueSessionId"),
		Claims:    claims,
	}
	if ident.SessionID == "" {
		ident.SessionID = provider.StringClaim(profile, "uniqueSessionId")
	}
	if exp, ok := claims["exp"].(float64); ok && exp > 0 {
		ident.Expiry = time.Unix(int64(exp), 0)
		if !p.now().Before(ident.Expiry) {
			return nil, &provider.InvalidTokenError{Provider: Name, Reason: "expired"}
		}
	}
	if len(profile) > 0 {
		claims["profile"] = profile
	}
	return ident, nil
}

// parseAnswer decodes a 2xx answer. Any JSON value is accepted; only an
// object can carry a profile.
func parseAnswer(answer []byte) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(answer, &v); err != nil {
		return nil, err
	}
	profile, _ := v.(map[string]any)
	return profile, nil
}

// userID finds the user's id in an answer: at its top level, or inside a
// "user" or "data" object, under "id", "userId" or "user_id".
func userID(profile map[string]any) string {
	for _, obj := range []any{profile, profile["user"], profile["data"]} {
		m, ok := obj.(map[string]any)
		if !ok {
			continue
		}
		for _, k := range []string{"id", "userId", "user_id"} {
			if id := provider.StringClaim(m, k); id != "" {
				return id
			}
		}
	}
	return ""
}
