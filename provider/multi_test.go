package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

// recorder is a provider that accepts everything and counts its calls.
type recorder struct {
	name    string
	calls   atomic.Int64
	err     error
	tokenID string
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Validate(_ context.Context, token string) (*provider.Identity, error) {
	r.calls.Add(1)
	if r.err != nil {
		return nil, r.err
	}
	return &provider.Identity{UserID: "u-" + r.name, TokenID: r.tokenID}, nil
}

func jwtWith(claims map[string]any) string {
	p, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(p) + ".c2ln"
}

func TestMultiSendsEachTokenToOneProvider(t *testing.T) {
	t.Parallel()
	plurality := &recorder{name: "plurality", err: &provider.InvalidTokenError{Provider: "plurality", Reason: "rejected"}}
	parajwt := &recorder{name: "para"}
	fallback := &recorder{name: "introspect"}
	m := provider.NewMulti(
		provider.Route{Match: provider.ClaimMatches("uniqueSessionId"), Provider: plurality},
		provider.Route{Match: provider.ClaimMatches("aud", "para-key-id"), Provider: parajwt},
		provider.Route{Provider: fallback},
	)
	assert.Equal(t, "plurality|para|introspect", m.Name())

	id, err := m.Validate(context.Background(), jwtWith(map[string]any{"aud": []any{"x", "para-key-id"}, "sub": "s"}))
	require.NoError(t, err)
	assert.Equal(t, "para", id.Provider, "the session records the provider that validated it")
	assert.Equal(t, "u-para", id.UserID)

	_, err = m.Validate(context.Background(), jwtWith(map[string]any{"id": "a", "uniqueSessionId": "x"}))
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
	assert.EqualValues(t, 1, plurality.calls.Load())
	assert.EqualValues(t, 1, parajwt.calls.Load(), "a rejected token was offered to another provider")
	assert.Zero(t, fallback.calls.Load(), "a rejected token was offered to another provider")

	id, err = m.Validate(context.Background(), "opaque-token")
	require.NoError(t, err)
	assert.Equal(t, "introspect", id.Provider)

	_, err = m.Validate(context.Background(), "../bad")
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
	assert.EqualValues(t, 1, fallback.calls.Load(), "a malformed token reached a provider")
}

func TestMultiWithoutCatchAllRefusesUnmatchedTokens(t *testing.T) {
	t.Parallel()
	p := &recorder{name: "para"}
	m := provider.NewMulti(provider.Route{Match: provider.ClaimMatches("aud", "k"), Provider: p})
	_, err := m.Validate(context.Background(), jwtWith(map[string]any{"aud": "other"}))
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
	_, err = m.Validate(context.Background(), "opaque")
	assert.ErrorIs(t, err, provider.ErrInvalidToken)
	assert.Zero(t, p.calls.Load())
}

func TestNewMultiRefusesAmbiguousRoutes(t *testing.T) {
	t.Parallel()
	a, b := &recorder{name: "a"}, &recorder{name: "b"}
	assert.Panics(t, func() { provider.NewMulti() })
	assert.Panics(t, func() { provider.NewMulti(provider.Route{Match: provider.ClaimMatches("x")}) }, "no provider")
	assert.Panics(t, func() { provider.NewMulti(provider.Route{Provider: a}, provider.Route{Provider: b}) }, "catch-all not last")
	assert.Panics(t, func() {
		provider.NewMulti(provider.Route{Match: provider.ClaimMatches("x"), Provider: a}, provider.Route{Provider: a})
	}, "two providers with one name")
	// Provider "a:b"'s user "c" and provider "a"'s user "b:c" would share
	// one user index ("a:b:c"): a ':' in a name is refused.
	assert.PanicsWithValue(t, `sessiongate/provider: NewMulti route 1's provider name "a:b" holds a ':'`, func() {
		provider.NewMulti(provider.Route{Match: provider.ClaimMatches("x"), Provider: a}, provider.Route{Provider: &recorder{name: "a:b"}})
	}, "a name with the index's separator")
}

func TestClaimMatches(t *testing.T) {
	t.Parallel()
	token := jwtWith(map[string]any{"iss": "https://a.example", "aud": []any{"x", 7, "y"}, "n": nil})
	assert.True(t, provider.ClaimMatches("iss")(token))
	assert.True(t, provider.ClaimMatches("iss", "https://b.example", "https://a.example")(token))
	assert.False(t, provider.ClaimMatches("iss", "https://b.example")(token))
	assert.True(t, provider.ClaimMatches("aud", "y")(token))
	assert.False(t, provider.ClaimMatches("aud", "7")(token))
	assert.False(t, provider.ClaimMatches("n")(token), "a null claim is absent")
	assert.False(t, provider.ClaimMatches("iss")("opaque"))
}
