package plurality

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
	"github.com/sessiongate/sessiongate/provider/internal/timeclaims"
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

	// Leeway is the clock skew tolerated on the token's "exp": a token is
	// refused locally from exp + Leeway on (Plurality decides before
	// that), and Identity.Expiry is exp + Leeway. Default
	// provider.DefaultLeeway (30 s).
	Leeway time.Duration

	// Now is the clock used to check the token's expiry. Default time.Now.
	Now func() time.Time
}

// Provider validates Plurality tokens. It is safe for concurrent use.
type Provider struct {
	validateURL   string
	authorization *provider.Secret // the Authorization header, Basic credentials
	client        *http.Client
	leeway        time.Duration
	now           func() time.Time
}

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
	if _, err := provider.CheckURL(base, true); err != nil {
		panic("sessiongate/plurality: Config.BaseURL: " + err.Error())
	}
	client := cfg.HTTPClient
	if client == nil {
		client = provider.NewHTTPClient(cfg.Timeout)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	leeway := cfg.Leeway
	if leeway <= 0 {
		leeway = provider.DefaultLeeway
	}
	creds := base64.StdEncoding.EncodeToString([]byte(cfg.ClientID + ":" + string(cfg.ClientSecret)))
	return &Provider{
		validateURL:   strings.TrimSuffix(base, "/") + "/user/validate",
		authorization: new(provider.Secret("Basic " + creds)),
		client:        client,
		leeway:        leeway,
		now:           now,
	}
}

// Name returns "plurality".
func (p *Provider) Name() string { return Name }

// Validate asks Plurality whether token is valid and returns its Identity.
//
// Plurality's tokens are JWTs (HS256, signed with Plurality's own key, so
// only Plurality can check the signature). A token that is not a
// canonical JWS compact serialization (unpadded base64url, zero trailing
// bits, header and payload JSON objects with unique member names) is
// refused as malformed without a call: Plurality's decoder would accept a
// second spelling of one token. The Identity's TokenID is derived from the
// canonical signing input; its Expiry is the payload's "exp" + Leeway.
//
// 2xx is valid; 400, 401, 403 and 404 are ErrInvalidToken; a redirect
// (never followed: Go would re-send the GET without its body), 429, 5xx,
// timeouts and unparseable answers are ErrUnavailable.
func (p *Provider) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	if !provider.ValidSyntax(token) {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed"}
	}
	tok, err := parseToken(token)
	if err != nil {
		return nil, err
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
	req.Header.Set("Authorization", string(*p.authorization))

	resp, answer, err := provider.Do(p.client, req, Name)
	if err != nil {
		return nil, err
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return p.identity(tok, answer)
	case code == http.StatusBadRequest, code == http.StatusUnauthorized,
		code == http.StatusForbidden, code == http.StatusNotFound:
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: fmt.Sprintf("rejected upstream (%d)", code)}
	default:
		return nil, provider.StatusUnavailable(Name, resp)
	}
}

// token is a Plurality token read before the call: its claims (exact
// member names), time claims (range-checked) and TokenID.
type token struct {
	claims map[string]any
	times  timeclaims.Times
	id     string
}

// parseToken reads a canonical JWS's payload, or refuses the token as
// malformed.
func parseToken(raw string) (*token, error) {
	jws, err := strict.ParseJWS(raw)
	if err != nil {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed"}
	}
	claims, err := strict.Object(jws.Payload)
	if err != nil {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "malformed: the payload is not a JSON object with unique member names"}
	}
	times, err := timeclaims.Read(claims)
	if err != nil {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: err.Error()}
	}
	return &token{claims: claims, times: times, id: jws.TokenID()}, nil
}

// identity builds the Identity from a 2xx answer and the token's payload.
func (p *Provider) identity(tok *token, answer []byte) (*provider.Identity, error) {
	profile, err := parseAnswer(answer)
	if err != nil {
		return nil, &provider.UnavailableError{Provider: Name, Reason: "answer is not JSON with unique member names"}
	}
	claims := tok.claims
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
		Expiry:    tok.times.Until(p.leeway),
		IssuedAt:  tok.times.IssuedAt,
		TokenID:   tok.id,
		SessionID: provider.StringClaim(claims, "uniqueSessionId"),
		Claims:    claims,
	}
	if ident.SessionID == "" {
		ident.SessionID = provider.StringClaim(profile, "uniqueSessionId")
	}
	if !ident.Expiry.IsZero() && !p.now().Before(ident.Expiry) {
		return nil, &provider.InvalidTokenError{Provider: Name, Reason: "expired"}
	}
	if len(profile) > 0 {
		claims["profile"] = profile
	}
	return ident, nil
}

// parseAnswer decodes a 2xx answer. Any JSON value is accepted; only an
// object can carry a profile, and its member names must be unique at
// every depth.
func parseAnswer(answer []byte) (map[string]any, error) {
	if trimmed := bytes.TrimLeft(answer, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return strict.Object(answer)
	}
	var v any
	return nil, json.Unmarshal(answer, &v)
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
