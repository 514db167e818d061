package jwks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// discovery finds the JWKS address in the issuer's OpenID configuration
// once, and remembers it after the first success.
type discovery struct {
	cfg Config
	mu  sync.Mutex
	url string
}

// locate returns the key set's address, fetching the discovery document
// if it has not been read yet. It runs inside a key-set fetch, so calls
// are already merged.
func (d *discovery) locate(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.url != "" {
		return d.url, nil
	}
	endpoint := strings.TrimSuffix(d.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return "", &provider.UnavailableError{Provider: d.cfg.Name, Reason: "building the discovery request failed", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, body, err := provider.Do(d.cfg.HTTPClient, req, d.cfg.Name)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", provider.StatusUnavailable(d.cfg.Name, resp)
	}
	u, err := parseDiscovery(body, d.cfg.Issuer)
	if err != nil {
		return "", &provider.UnavailableError{Provider: d.cfg.Name, Reason: "unusable discovery document", Err: err}
	}
	d.url = u
	return u, nil
}

// parseDiscovery returns jwks_uri from an OpenID Provider Configuration
// document whose "issuer" is issuer (OpenID Connect Discovery 1.0, §4.3).
// The key set must be served over https, or over http only when the
// issuer itself is (a loopback development issuer). Members are read
// exactly as named, and a document with duplicate member names is refused.
func parseDiscovery(body []byte, issuer string) (string, error) {
	doc, err := strict.Object(body)
	if err != nil {
		return "", fmt.Errorf("jwks: discovery document is not a JSON object with unique member names")
	}
	docIssuer, _ := doc["issuer"].(string)
	jwksURI, _ := doc["jwks_uri"].(string)
	if docIssuer != issuer {
		return "", fmt.Errorf("jwks: discovery document names issuer %q, want %q", docIssuer, issuer)
	}
	if len(jwksURI) > 2048 {
		return "", fmt.Errorf("jwks: discovery document has no usable jwks_uri")
	}
	iss, err := url.Parse(issuer)
	httpIssuer := err == nil && iss.Scheme == "http"
	u, err := provider.CheckURL(jwksURI, httpIssuer)
	if err != nil {
		return "", fmt.Errorf("jwks: discovery document's jwks_uri: %w", err)
	}
	return u.String(), nil
}
