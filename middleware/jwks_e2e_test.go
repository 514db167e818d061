package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// newJWKSEnv is an env whose provider is a generic JWKS issuer (fake).
func newJWKSEnv(t *testing.T, kind string) (*env, *providertest.Issuer) {
	t.Helper()
	iss := providertest.NewIssuer()
	t.Cleanup(iss.Close)
	var e *env
	e = newEnv(t, kind, func(c *middleware.Config) {
		c.Provider = jwks.New(jwks.Config{Name: "oidc", Issuer: iss.URL, Audiences: []string{"api"}, JWKSURL: iss.JWKSURL, Now: c.Now})
	})
	return e, iss
}

// respell returns token with its last character c replaced by the
// base64url character of index(c) XOR 1: for a signature whose encoding
// ends in unused bits, the same bytes under a lenient decoder.
func respell(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[i^1])
}

func TestOtherSpellingsOfASignedOutJWTAreRefused(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e, iss := newJWKSEnv(t, kind)
		token := iss.Token("ann", "api", time.Hour, nil)
		r := e.exchange(token)
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: token}).StatusCode)
		other := e.do(req{path: "/api/me", bearer: respell(token)})
		assert.Equal(t, http.StatusUnauthorized, other.StatusCode, "a non-canonical spelling never mints: %s", other.body)
		assert.Nil(t, other.sessionCookie())

		// ES256: (r, n-s) is another valid signature of the same claims,
		// which anyone can compute: the same credential, refused after
		// sign-out by the credential's mark.
		iss.Keys.Rotate("ES256")
		es := iss.Token("ann", "api", time.Hour, nil)
		r = e.exchange(es)
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value}).StatusCode)
		mall := providertest.NegateES256(es)
		again := e.do(req{path: "/api/me", bearer: mall})
		assert.Equal(t, http.StatusUnauthorized, again.StatusCode, "the malleated signature is the same credential: %s", again.body)
		assert.Nil(t, again.sessionCookie())
	})
}

func TestOneLeewayEndToEnd(t *testing.T) {
	t.Parallel()
	e, iss := newJWKSEnv(t, "memory")
	// exp 10 s ago: within the provider's leeway, so within the mint's.
	token := iss.Token("bea", "api", -10*time.Second, nil)
	r := e.exchange(token)
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
	assert.Positive(t, r.sessionCookie().MaxAge, "a session of the leeway's remaining seconds")
	e.clock.Advance(25 * time.Second)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: r.sessionCookie().Value}).StatusCode, "it ends with the leeway")
}

func TestCannotVerifyNowIs503NotInvalid(t *testing.T) {
	t.Parallel()
	e, iss := newJWKSEnv(t, "memory")
	require.Equal(t, http.StatusCreated, e.exchange(iss.Token("cy", "api", time.Hour, nil)).StatusCode)
	unknown := iss.Keys.SignWithHeaders(map[string]any{"kid": "no-such-key"}, map[string]any{"iss": iss.URL, "sub": "cy", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()})
	assert.Equal(t, http.StatusUnauthorized, e.exchange(unknown).StatusCode, "a key the issuer does not publish, after a refetch")

	iss.Keys.Rotate("RS256") // the refetch is throttled now
	rotated := iss.Token("cy", "api", time.Hour, nil)
	for range 2 {
		r := e.exchange(rotated)
		assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, "cannot verify now: %s", r.body)
		assert.Contains(t, r.body, "provider_unavailable")
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
	}
	e.clock.Advance(jwks.DefaultRefreshInterval)
	assert.Equal(t, http.StatusCreated, e.exchange(rotated).StatusCode, "never negative-cached: verified once the keys can be fetched")
}

// An introspection upstream that accepts two spellings of one token names
// the same jti for both: a sign-out of one refuses the other, and RevokeUser
// refuses every spelling.
func TestIntrospectedSpellingsShareTheSignOut(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		fake := providertest.NewIntrospection()
		t.Cleanup(fake.Close)
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.Provider = introspect.New(introspect.Config{URL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret), Timeout: testProviderTimeout})
		})
		one := fake.Issue("ida", time.Hour, map[string]any{"jti": "t-1"})
		two := fake.Issue("ida", time.Hour, map[string]any{"jti": "t-1"})
		r := e.exchange(one)
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: two}).StatusCode, "the other spelling is the same credential")

		three := fake.Issue("ida", time.Hour, map[string]any{"jti": "t-2"})
		four := fake.Issue("ida", time.Hour, map[string]any{"jti": "t-2"})
		require.Equal(t, http.StatusCreated, e.exchange(three).StatusCode)
		_, err := e.auth.RevokeUser(context.Background(), "introspect", "ida")
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: four}).StatusCode, "revoked for every spelling")
	})
}
