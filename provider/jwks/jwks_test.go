package jwks_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/jwtrules"
	"github.com/sessiongate/sessiongate/provider/jwks"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

const audience = "api://orders"

func TestJWTRules(t *testing.T) {
	jwtrules.Run(t, func(t *testing.T) jwtrules.Upstream {
		iss := providertest.NewIssuer()
		t.Cleanup(iss.Close)
		return jwtrules.Upstream{
			Keys:     iss.Keys,
			SetFault: iss.SetFault,
			New: func(now func() time.Time, refresh time.Duration) provider.Provider {
				return jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{audience}, JWKSURL: iss.JWKSURL, RefreshInterval: refresh, Now: now, Timeout: 30 * time.Second})
			},
			Claims: func(sub string, iat, exp time.Time) map[string]any {
				return map[string]any{"iss": iss.URL, "sub": sub, "aud": audience, "iat": iat.Unix(), "exp": exp.Unix()}
			},
		}
	})
}

func TestAuthTimeBecomesIdentityAuthTime(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	p := jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{audience}, JWKSURL: iss.JWKSURL})

	at := time.Now().Add(-42 * time.Minute).Truncate(time.Second)
	id, err := validate(t, p, iss.Token("ada", audience, time.Hour, map[string]any{"auth_time": at.Unix()}))
	require.NoError(t, err)
	assert.True(t, at.Equal(id.AuthTime), "AuthTime %v, want %v", id.AuthTime, at)

	id, err = validate(t, p, iss.Token("ada", audience, time.Hour, nil))
	require.NoError(t, err)
	assert.True(t, id.AuthTime.IsZero(), "no auth_time: zero AuthTime, the exchange counts")
}

func validate(t *testing.T, p provider.Provider, token string) (*provider.Identity, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // patience, not a speed bound
	defer cancel()
	return p.Validate(ctx, token)
}

func TestDiscoveryFindsTheKeySetOnce(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	p := jwks.New(jwks.Config{Name: "acme", Issuer: iss.URL, Audiences: []string{audience}})

	for i := range 3 {
		id, err := validate(t, p, iss.Token("ada", audience, time.Hour, map[string]any{"sid": "sid-1", "email": "ada@example.com"}))
		require.NoError(t, err, "token %d", i)
		assert.Equal(t, "ada", id.UserID)
		assert.Equal(t, "acme", id.Provider)
		assert.Equal(t, "sid-1", id.SessionID)
		assert.Equal(t, "ada@example.com", id.Claims["email"])
	}
	assert.EqualValues(t, 1, iss.DiscoveryCalls())
	assert.EqualValues(t, 1, iss.Keys.Calls())
}

func TestDiscoveryFailuresAreUnavailable(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	for name, fault := range map[string]providertest.Fault{
		"500":             {Status: http.StatusInternalServerError},
		"not json":        {Body: []byte("<html>")},
		"another issuer":  {Body: []byte(`{"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}`)},
		"no jwks_uri":     {Body: []byte(`{"issuer": "` + iss.URL + `"}`)},
		"relative uri":    {Body: []byte(`{"issuer": "` + iss.URL + `", "jwks_uri": "/jwks"}`)},
		"down":            {Down: true},
		"answer too big":  {Body: make([]byte, provider.MaxBodySize+1)},
		"slow beyond 1 s": {Delay: time.Hour}, // only the 1 s timeout ends it
	} {
		t.Run(name, func(t *testing.T) {
			p := jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{audience}, Timeout: time.Second})
			iss.SetFault(fault)
			_, err := validate(t, p, iss.Token("ada", audience, time.Hour, nil))
			assert.ErrorIs(t, err, provider.ErrUnavailable)
			assert.NotErrorIs(t, err, provider.ErrInvalidToken)
		})
	}
}

func TestIssuerAndUserIDClaim(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	p := jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{"a", audience}, JWKSURL: iss.JWKSURL, UserIDClaim: "uid"})

	id, err := validate(t, p, iss.Token("sub-1", audience, time.Hour, map[string]any{"uid": 42}))
	require.NoError(t, err)
	assert.Equal(t, "42", id.UserID, "numeric ids are accepted")
	assert.Equal(t, jwks.DefaultName, id.Provider)

	_, err = validate(t, p, iss.Token("sub-1", audience, time.Hour, nil))
	assert.ErrorIs(t, err, provider.ErrInvalidToken, "no uid claim")

	_, err = validate(t, p, iss.Token("sub-1", audience, time.Hour, map[string]any{"uid": "x", "iss": "https://other.example"}))
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
	assert.ErrorContains(t, err, "issuer")

	_, err = validate(t, p, iss.Token("sub-1", audience, time.Hour, map[string]any{"uid": "x", "aud": []string{"z", "a"}}))
	assert.NoError(t, err, "any one configured audience is enough")
}

func TestAlgorithmAllowlist(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	p := jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{audience}, JWKSURL: iss.JWKSURL, Algorithms: []string{"ES256"}})
	_, err := validate(t, p, iss.Token("ada", audience, time.Hour, nil))
	assert.ErrorIs(t, err, provider.ErrInvalidToken, "RS256 is not in this allowlist")
	assert.Zero(t, iss.Keys.Calls(), "a token refused for its algorithm caused a key fetch")

	iss.Keys.Rotate("ES256")
	_, err = validate(t, p, iss.Token("ada", audience, time.Hour, nil))
	assert.NoError(t, err)
}

func TestNewRefusesImpossibleConfiguration(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]jwks.Config{
		"no issuer":     {Audiences: []string{"a"}, JWKSURL: "https://x.example/jwks"},
		"no audience":   {Issuer: "https://x.example"},
		"empty aud":     {Issuer: "https://x.example", Audiences: []string{""}},
		"HS256 allowed": {Issuer: "https://x.example", Audiences: []string{"a"}, Algorithms: []string{"HS256"}},
		"none allowed":  {Issuer: "https://x.example", Audiences: []string{"a"}, Algorithms: []string{"none"}},
		"relative url":  {Issuer: "https://x.example", Audiences: []string{"a"}, JWKSURL: "/jwks"},
	} {
		assert.Panics(t, func() { jwks.New(cfg) }, name)
	}
	assert.Panics(t, func() { jwks.NewVerifier(jwks.Config{Audiences: []string{"a"}}) }, "no key set and no issuer")
}

// A caller that gives up leaves the key fetch running for the others: the
// fetch is detached from any one caller's context.
func TestAWaiterLeavesOnItsOwnContext(t *testing.T) {
	t.Parallel()
	iss := providertest.NewIssuer()
	defer iss.Close()
	p := jwks.New(jwks.Config{Issuer: iss.URL, Audiences: []string{audience}, JWKSURL: iss.JWKSURL})
	iss.SetFault(providertest.Fault{Delay: 500 * time.Millisecond})
	token := iss.Token("ada", audience, time.Hour, nil)

	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Validate(impatient, token)
	assert.ErrorIs(t, err, provider.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	id, err := validate(t, p, token)
	require.NoError(t, err, "the fetch the first caller started still completes")
	assert.Equal(t, "ada", id.UserID)
	assert.EqualValues(t, 1, iss.Keys.Calls(), "one fetch served both callers")
}
