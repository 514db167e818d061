package jwks

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

func TestKeyOpsAndUseAreHonoured(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pub, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "k", Algorithm: "RS256"})
	require.NoError(t, err)
	member := func(extra string) string { return `{"keys":[` + strings.TrimSuffix(string(pub), "}") + extra + `}]}` }
	for extra, usable := range map[string]bool{
		``:                                   true,
		`,"use":"sig"`:                       true,
		`,"key_ops":["verify"]`:              true,
		`,"key_ops":["sign","verify"]`:       true,
		`,"use":"enc"`:                       false,
		`,"key_ops":["encrypt"]`:             false,
		`,"key_ops":[]`:                      false,
		`,"key_ops":"verify"`:                false,
		`,"key_ops":["verify",7]`:            false,
		`,"kid":"other"`:                     false, // a duplicate member
		`,"KEY_OPS":["encrypt"],"Use":"enc"`: true,  // other names, not key_ops or use
	} {
		keys, err := parseKeySet([]byte(member(extra)))
		if usable {
			assert.NoError(t, err, extra)
			assert.Len(t, keys, 1, extra)
		} else {
			assert.Error(t, err, "%s: the only key is not for verifying", extra)
		}
	}
	_, err = parseKeySet([]byte(`{"KEYS":[` + string(pub) + `]}`))
	assert.Error(t, err, `"KEYS" is not "keys"`)
	_, err = parseKeySet([]byte(`{"keys":[],"keys":[` + string(pub) + `]}`))
	assert.Error(t, err, "duplicate members")
}

// RFC 7518 §3.5: PS256's salt is exactly as long as the hash. Go's
// rsa.VerifyPSS with nil options (what go-jose passes) accepts any length.
func TestPSSSaltLengthIsTheHashLength(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"PS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{}`))
	digest := sha256.Sum256([]byte(input))
	for _, tc := range []struct {
		salt  int
		valid bool
	}{
		{rsa.PSSSaltLengthEqualsHash, true}, {32, true}, {20, false}, {64, false}, {rsa.PSSSaltLengthAuto, false},
	} {
		sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: tc.salt})
		require.NoError(t, err)
		assert.Equal(t, tc.valid, verifySignature(key.Public(), "PS256", input, sig), "salt length %d", tc.salt)
	}
	assert.False(t, verifySignature(key.Public(), "RS256", input, providertest.SignBytes(jose.PS256, key, []byte(input))), "PSS is not PKCS #1 v1.5")
}

func TestECDSASignaturesAreExactlyRAndS(t *testing.T) {
	t.Parallel()
	keys := providertest.NewKeys()
	keys.Rotate("ES256")
	token := keys.Sign(map[string]any{"sub": "a"})
	set, err := parseKeySet(keys.JWKS())
	require.NoError(t, err)
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	require.NoError(t, err)
	ec := set[len(set)-1].Key
	assert.True(t, verifySignature(ec, "ES256", token[:dot], sig))
	for name, bad := range map[string][]byte{
		"leading zero": append([]byte{0}, sig...), "trailing zero": append(append([]byte{}, sig...), 0),
		"truncated": sig[:63], "ES384 size": append(append([]byte{}, sig...), make([]byte, 32)...),
	} {
		assert.False(t, verifySignature(ec, "ES256", token[:dot], bad), name)
	}
	assert.False(t, verifySignature(ec, "ES384", token[:dot], sig), "another curve's algorithm")
}

// panicky is a RoundTripper that panics while on.
type panicky struct{ on atomic.Bool }

func (p *panicky) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.on.Load() {
		panic("transport bug")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A panic in the background key-set fetch fails that fetch for its
// waiters; it neither kills the process nor wedges the key set.
func TestAPanicInTheKeySetFetchIsOneFailedFetch(t *testing.T) {
	t.Parallel()
	for _, discover := range []bool{false, true} {
		iss := providertest.NewIssuer()
		defer iss.Close()
		rt := &panicky{}
		rt.on.Store(true)
		now := time.Now()
		clock := func() time.Time { return now }
		cfg := Config{Issuer: iss.URL, Audiences: []string{"a"}, HTTPClient: &http.Client{Transport: rt, Timeout: 5 * time.Second}, Now: clock}
		if !discover {
			cfg.JWKSURL = iss.JWKSURL
		}
		p := New(cfg)
		token := iss.Token("ada", "a", time.Hour, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		_, err := p.Validate(ctx, token)
		var ue *provider.UnavailableError
		require.True(t, errors.As(err, &ue), "discovery %v: %v", discover, err)
		assert.Contains(t, ue.Error(), "transport bug")
		assert.Contains(t, ue.Error(), "goroutine", "the stack is in the error, to be logged once")

		rt.on.Store(false)
		now = now.Add(2 * firstFetchRetry)
		id, err := p.Validate(ctx, token)
		require.NoError(t, err, "discovery %v: later calls work", discover)
		assert.Equal(t, "ada", id.UserID)
	}
}

func TestROCAWeakModuliAreRefused(t *testing.T) {
	t.Parallel()
	f := readWycheproof(t, "jwk_vectors.json")
	found := false
	for _, g := range f.Groups {
		if g.Comment != "jws_rsa_roca_key" {
			continue
		}
		found = true
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal([]byte(g.JWK), &set))
		require.Len(t, set.Keys, 1)
		assert.True(t, rocaWeak(set.Keys[0].Key.(*rsa.PublicKey).N))
		_, err := parseKeySet([]byte(g.JWK))
		assert.Error(t, err)
	}
	require.True(t, found, "the ROCA vector")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	assert.False(t, rocaWeak(key.N), "a fresh key")
}
