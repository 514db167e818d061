package jwks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/provider"
)

// Defaults of Config.
const (
	DefaultName            = "jwks"
	DefaultUserIDClaim     = "sub"
	DefaultLeeway          = provider.DefaultLeeway
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMaxKeyAge       = time.Hour
)

// DefaultAlgorithms is the signature allowlist when Config.Algorithms is
// empty: every asymmetric algorithm of RFC 7518 plus EdDSA. "none" and the
// HMAC algorithms are never accepted: a key set publishes public keys, and
// an HMAC "signed" with a public key proves nothing.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config configures a Verifier or a Provider. Printing a Config shows no
// secret: it holds none.
type Config struct {
	// Name is the provider name recorded in sessions and used in errors.
	// Default DefaultName ("jwks"). It holds no ':' (provider.Provider.Name).
	Name string

	// Issuer is the expected "iss" claim. Required by New; optional for
	// NewVerifier (empty: "iss" is not checked). When JWKSURL is empty,
	// the key set's address is discovered from
	// Issuer + "/.well-known/openid-configuration", whose "issuer" must
	// equal Issuer exactly.
	Issuer string

	// Audiences lists the accepted "aud" values; a token must name at
	// least one of them. Required: a token minted for another application
	// of the same issuer must not open a session here.
	Audiences []string

	// JWKSURL is the key set's address. Default: discovered from Issuer.
	JWKSURL string

	// UserIDClaim is the claim that holds the user's id (New only).
	// Default DefaultUserIDClaim ("sub"). A string or integral number.
	UserIDClaim string

	// Algorithms is the allowlist of "alg" values. Default
	// DefaultAlgorithms. Only asymmetric algorithms are allowed.
	Algorithms []string

	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat": a
	// token is refused from exp + Leeway on, and Identity.Expiry is exp +
	// Leeway. Default DefaultLeeway (provider.DefaultLeeway, 30 s).
	Leeway time.Duration

	// RefreshInterval is the least time between two fetches of the key set
	// caused by tokens naming a key the cache lacks, however many such
	// tokens arrive. Within it, such a token is ErrUnavailable with
	// RetryAfter set to when a fetch is allowed again (it may be signed
	// with a key the issuer published since), not ErrInvalidToken.
	// Default DefaultRefreshInterval (5 min).
	RefreshInterval time.Duration

	// MaxKeyAge is how long fetched keys are used before they are fetched
	// again in the background (a removed key stops verifying within about
	// MaxKeyAge). If that fetch fails, the cached keys keep verifying.
	// Default DefaultMaxKeyAge (1 h).
	MaxKeyAge time.Duration

	// HTTPClient fetches the key set and the discovery document (bodiless
	// GETs, which follow the client's redirect policy; see
	// provider.NewHTTPClient). A panic in it fails the fetch, not the
	// process. Default provider.NewHTTPClient(Timeout).
	HTTPClient *http.Client

	// Timeout bounds one fetch. Default provider.DefaultTimeout (5 s).
	Timeout time.Duration

	// Now is the clock for claim checks and key refresh. Default time.Now.
	Now func() time.Time
}

// withDefaults returns a filled copy of c, panicking on impossible
// configuration.
func (c Config) withDefaults(pkg string) Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		panic(pkg + ": Config.Audiences needs at least one non-empty audience")
	}
	c.Audiences = slices.Clone(c.Audiences)
	if c.JWKSURL == "" && c.Issuer == "" {
		panic(pkg + ": Config needs a JWKSURL or an Issuer to discover it from")
	}
	for _, f := range []struct{ name, url string }{{"JWKSURL", c.JWKSURL}, {"Issuer", c.Issuer}} {
		if f.url == "" {
			continue
		}
		if _, err := provider.CheckURL(f.url, true); err != nil {
			panic(pkg + ": Config." + f.name + ": " + err.Error())
		}
	}
	if c.UserIDClaim == "" {
		c.UserIDClaim = DefaultUserIDClaim
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms
	}
	c.Algorithms = slices.Clone(c.Algorithms)
	for _, alg := range c.Algorithms {
		if !slices.Contains(DefaultAlgorithms, alg) {
			panic(fmt.Sprintf("%s: algorithm %q is not allowed; choose among %s", pkg, alg, strings.Join(DefaultAlgorithms, ", ")))
		}
	}
	if c.Leeway <= 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxKeyAge <= 0 {
		c.MaxKeyAge = DefaultMaxKeyAge
	}
	if c.Timeout <= 0 {
		c.Timeout = provider.DefaultTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = provider.NewHTTPClient(c.Timeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
