package providertest

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Issuer is a loopback fake of an OpenID Connect issuer's public
// endpoints: the discovery document at
// {URL}/.well-known/openid-configuration and the key set at {URL}/jwks.
// Keys signs its tokens. It is safe for concurrent use.
type Issuer struct {
	// URL is the issuer identifier: the "iss" of its tokens and the root
	// of discovery.
	URL string
	// JWKSURL is where the key set is served.
	JWKSURL string
	// Keys signs tokens and serves the key set.
	Keys *Keys

	Server    // Close, Calls, LastRequest, SetFault
	discovery atomic.Int64
}

// NewIssuer starts a fake issuer with one RS256 key on a free loopback
// port. Close it when done.
func NewIssuer() *Issuer {
	i := &Issuer{Keys: NewKeys()}
	i.counts = map[string]*atomic.Int64{discoveryPath: &i.discovery, "/jwks": &i.Keys.calls}
	i.URL = i.start(i.serve)
	i.JWKSURL = i.URL + "/jwks"
	return i
}

// DiscoveryCalls returns how many times the discovery document was
// fetched.
func (i *Issuer) DiscoveryCalls() int64 { return i.discovery.Load() }

// Token returns a token for sub with audience aud, valid for ttl, plus
// extra claims.
func (i *Issuer) Token(sub, aud string, ttl time.Duration, extra map[string]any) string {
	now := time.Now()
	claims := map[string]any{"iss": i.URL, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	return i.Keys.Sign(claims)
}

const discoveryPath = "/.well-known/openid-configuration"

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request, _ []byte) {
	switch r.URL.Path {
	case discoveryPath:
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.JWKSURL,
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	case "/jwks":
		i.Keys.serveJWKS(w)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "not found"})
	}
}
