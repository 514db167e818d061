package introspect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/introspect"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func newProvider(t *testing.T, mod func(*introspect.Config)) (*providertest.Introspection, *introspect.Provider) {
	t.Helper()
	fake := providertest.NewIntrospection()
	t.Cleanup(fake.Close)
	cfg := introspect.Config{URL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret), Timeout: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return fake, introspect.New(cfg)
}

func validate(t *testing.T, p *introspect.Provider, token string) (*provider.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // patience, not a speed bound
	defer cancel()
	return p.Validate(ctx, token)
}

func TestActiveTokenSpeaksRFC7662(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	issued := time.Now().Truncate(time.Second) // exp is in whole seconds
	token := fake.Issue("ada", time.Hour, map[string]any{"sid": "s-1", "username": "ada@example.com"})

	id, err := validate(t, p, token)
	require.NoError(t, err)
	assert.Equal(t, "ada", id.UserID)
	assert.Equal(t, introspect.DefaultName, id.Provider)
	assert.Equal(t, "s-1", id.SessionID)
	assert.False(t, id.Expiry.Before(issued.Add(time.Hour+provider.DefaultLeeway)) || id.Expiry.After(time.Now().Add(time.Hour+provider.DefaultLeeway)), "expiry is the token's exp plus the leeway")
	assert.Equal(t, "ada@example.com", id.Claims["username"])

	req := fake.LastRequest()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "application/x-www-form-urlencoded", req.Header.Get("Content-Type"))
	form, err := url.ParseQuery(string(req.Body))
	require.NoError(t, err)
	assert.Equal(t, token, form.Get("token"))
	assert.Equal(t, "access_token", form.Get("token_type_hint"))
	user, pass, ok := (&http.Request{Header: req.Header}).BasicAuth()
	require.True(t, ok, "client_secret_basic")
	assert.Equal(t, fake.ClientID, user)
	assert.Equal(t, fake.ClientSecret, pass)
}

func TestInactiveAndRefusedTokens(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, func(c *introspect.Config) {
		c.Audiences = []string{"orders"}
		c.Issuer = "https://as.example"
	})
	ok := map[string]any{"aud": []any{"x", "orders"}, "iss": "https://as.example"}
	id, err := validate(t, p, fake.Issue("ada", time.Hour, ok))
	require.NoError(t, err)
	assert.Equal(t, "ada", id.UserID)

	revoked := fake.Issue("ada", time.Hour, ok)
	fake.Revoke(revoked)
	for name, token := range map[string]string{
		"unknown":          "never-issued",
		"revoked":          revoked,
		"expired upstream": fake.Issue("ada", -time.Second, ok),
		"active false":     fake.Issue("ada", time.Hour, map[string]any{"active": false, "aud": "orders", "iss": "https://as.example"}),
		"exp in the past":  fake.Issue("ada", time.Hour, map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "aud": "orders", "iss": "https://as.example"}),
		"nbf in future":    fake.Issue("ada", time.Hour, map[string]any{"nbf": time.Now().Add(time.Hour).Unix(), "aud": "orders", "iss": "https://as.example"}),
		"other audience":   fake.Issue("ada", time.Hour, map[string]any{"aud": "billing", "iss": "https://as.example"}),
		"other issuer":     fake.Issue("ada", time.Hour, map[string]any{"aud": "orders", "iss": "https://evil.example"}),
		"no sub":           fake.Issue("", time.Hour, ok),
	} {
		_, err := validate(t, p, token)
		assert.ErrorIs(t, err, provider.ErrInvalidToken, name)
		assert.NotErrorIs(t, err, provider.ErrUnavailable, name)
	}

	calls := fake.Calls()
	for _, bad := range []string{"", "a b", strings.Repeat("x", provider.MaxTokenSize+1), strings.Repeat(".", 1<<20)} {
		_, err := validate(t, p, bad)
		assert.ErrorIs(t, err, provider.ErrInvalidToken)
	}
	assert.Equal(t, calls, fake.Calls(), "malformed tokens reached the endpoint")
}

func TestEndpointFailuresAreUnavailable(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	token := fake.Issue("ada", time.Hour, nil)
	for name, fault := range map[string]providertest.Fault{
		"401 (our credentials)": {Status: 401},
		"403":                   {Status: 403},
		"400":                   {Status: 400},
		"429":                   {Status: 429, RetryAfter: "3"},
		"503":                   {Status: 503},
		"not json":              {Body: []byte("<html>")},
		"no active":             {Body: []byte(`{"sub":"ada"}`)},
		"active as string":      {Body: []byte(`{"active":"true","sub":"ada"}`)},
		"array":                 {Body: []byte(`[true]`)},
		"oversized":             {Body: []byte(`{"active":true,"sub":"` + strings.Repeat("a", provider.MaxBodySize) + `"}`)},
		"down":                  {Down: true},
		"slow beyond 1 s":       {Delay: time.Hour}, // only a 1 s timeout ends it
	} {
		fake.SetFault(fault)
		q := p
		if fault.Delay > 0 {
			q = introspect.New(introspect.Config{URL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret), Timeout: time.Second})
		}
		_, err := validate(t, q, token)
		assert.ErrorIs(t, err, provider.ErrUnavailable, name)
		assert.NotErrorIs(t, err, provider.ErrInvalidToken, name)
		assert.NotContains(t, err.Error(), token, name)
	}

	fake.SetFault(providertest.Fault{})
	wrong := introspect.New(introspect.Config{URL: fake.URL, ClientID: fake.ClientID, ClientSecret: "wrong-secret"})
	_, err := validate(t, wrong, token)
	assert.ErrorIs(t, err, provider.ErrUnavailable, "the fake's own 401 for bad client credentials")
	assert.NotContains(t, err.Error(), "wrong-secret")
	assert.NotContains(t, fmt.Sprintf("%v %+v", wrong, wrong), "wrong-secret")
}

func TestNewRefusesImpossibleConfiguration(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]introspect.Config{
		"no url":      {ClientID: "a", ClientSecret: "b"},
		"relative":    {URL: "/introspect", ClientID: "a", ClientSecret: "b"},
		"no client":   {URL: "https://as.example/introspect", ClientSecret: "b"},
		"no secret":   {URL: "https://as.example/introspect", ClientID: "a"},
		"ftp is none": {URL: "ftp://as.example/introspect", ClientID: "a", ClientSecret: "b"},
	} {
		assert.Panics(t, func() { introspect.New(cfg) }, name)
	}
}

func TestAuthTimeOfAnIntrospectionAnswer(t *testing.T) {
	t.Parallel()
	fake, p := newProvider(t, nil)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	id, err := validate(t, p, fake.Issue("ada", time.Hour, map[string]any{"auth_time": at.Unix()}))
	require.NoError(t, err)
	assert.True(t, at.Equal(id.AuthTime), "RFC 9470 §6.2's auth_time becomes AuthTime: %v", id.AuthTime)

	for name, v := range map[string]any{
		"in the future beyond the leeway": time.Now().Add(time.Hour).Unix(),
		"negative":                        -1,
		"a string":                        "1700000000",
	} {
		_, err := validate(t, p, fake.Issue("ada", time.Hour, map[string]any{"auth_time": v}))
		assert.ErrorIs(t, err, provider.ErrInvalidToken, name)
	}
}
