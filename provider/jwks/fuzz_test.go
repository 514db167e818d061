package jwks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/internal/strict"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func FuzzParseKeySet(f *testing.F) {
	f.Add(providertest.NewKeys().JWKS())
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeySet(body)
		if err == nil && (len(keys) == 0 || len(keys) > maxKeys) {
			t.Fatalf("%d keys without an error", len(keys))
		}
		for _, k := range keys {
			if !k.IsPublic() {
				t.Fatal("kept a private or symmetric key")
			}
		}
	})
}

func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://a.example","jwks_uri":"https://a.example/jwks"}`))
	f.Add([]byte(`{"issuer":"https://a.example","jwks_uri":"http://a.example/jwks"}`))
	f.Add([]byte(`{"issuer":"https://b.example"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := parseDiscovery(body, "https://a.example")
		if _, bad := provider.CheckURL(u, true); err == nil && bad != nil {
			t.Fatalf("accepted jwks_uri %q", u)
		}
	})
}

// FuzzVerify feeds arbitrary tokens to a verifier whose keys are cached
// and which can never fetch: every answer must be a classified refusal
// (invalid, or unavailable for a key not cached while refetching is
// throttled), or an acceptance of a token the cached key really signed.
func FuzzVerify(f *testing.F) {
	keys := providertest.NewKeys()
	now := time.Now()
	good := keys.Sign(map[string]any{"sub": "ada", "aud": "a", "exp": now.Add(time.Hour).Unix()})
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	v := NewVerifier(Config{JWKSURL: "http://127.0.0.1:1/jwks", Audiences: []string{"a"}, Now: func() time.Time { return now }})
	set, err := parseKeySet(keys.JWKS())
	if err != nil {
		f.Fatal(err)
	}
	v.keys.keys, v.keys.fetched, v.keys.tried, v.keys.missed = set, now, now, now
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		switch {
		case err == nil && (c == nil || c.Expiry.IsZero() || c.TokenID == ""):
			t.Fatalf("accepted %q without an expiry or a TokenID", token)
		case err != nil && !errors.Is(err, provider.ErrInvalidToken) && !errors.Is(err, provider.ErrUnavailable):
			t.Fatalf("refused %q with an unclassified error: %v", token, err)
		case err == nil && strict.NonCanonicalJWS(token):
			t.Fatalf("accepted the non-canonical %q", token)
		}
	})
}
