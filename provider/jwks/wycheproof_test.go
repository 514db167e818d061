package jwks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider/internal/strict"
)

// wycheproofDir holds Project Wycheproof's JOSE vectors, outside the
// repository (relative to this package's directory).
const wycheproofDir = "../../../shared/testdata/wycheproof"

type wycheproofFile struct {
	Groups []struct {
		Comment string `json:"comment"`
		JWK     string `json:"jwk"`
		Tests   []struct {
			ID      int    `json:"id"`
			Comment string `json:"comment"`
			JWS     string `json:"jws"`
			Valid   bool   `json:"valid"`
		} `json:"tests"`
	} `json:"groups"`
}

func readWycheproof(t *testing.T, name string) wycheproofFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(wycheproofDir, name))
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Wycheproof vectors missing under CI=true: %v", err)
		}
		t.Skipf("Wycheproof vectors not found at %s (they live beside the repository, in shared/testdata): %v", wycheproofDir, err)
	}
	require.NoError(t, err)
	var f wycheproofFile
	require.NoError(t, json.Unmarshal(raw, &f))
	require.NotEmpty(t, f.Groups)
	return f
}

// wycheproofDeviations are vectors Wycheproof calls valid that sessiongate
// refuses on purpose, and why.
var wycheproofDeviations = map[string]string{
	"HS":      "HMAC is never accepted from a key set: a JWKS publishes public keys",
	"alg≠key": `the key's "alg" names another algorithm than the token's (RFC 7517 §4.4): the key is not used`,
}

// deviation returns why a valid vector is refused, or "".
func deviation(keyAlg, tokenAlg string) string {
	switch {
	case strings.HasPrefix(tokenAlg, "HS"):
		return wycheproofDeviations["HS"]
	case keyAlg != "" && keyAlg != tokenAlg:
		return wycheproofDeviations["alg≠key"]
	}
	return ""
}

// verifyWycheproof runs the key-selection and signature steps of Verify:
// the key set as parseKeySet keeps it, a canonical JWS, an allowed
// algorithm, a key fitting its kid and alg, the signature as RFC 7518
// defines it. The payloads are not JWT claims, so claims are not checked.
func verifyWycheproof(jwk, token string) (bool, string) {
	set := jwk
	if !strings.Contains(jwk, `"keys"`) {
		set = `{"keys":[` + jwk + `]}`
	}
	keys, err := parseKeySet([]byte(set))
	if err != nil {
		return false, "key set refused"
	}
	jws, err := strict.ParseJWS(token)
	if err != nil {
		return false, "malformed"
	}
	alg, _ := jws.Header["alg"].(string)
	if !slices.Contains(DefaultAlgorithms, alg) {
		return false, "algorithm"
	}
	kid, _ := jws.Header["kid"].(string)
	for _, k := range keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) && fits(k.Key, alg) &&
			verifySignature(k.Key, alg, jws.SigningInput, jws.Signature) {
			return true, ""
		}
	}
	return false, "no key verifies"
}

func TestWycheproof(t *testing.T) {
	t.Parallel()
	accepted, refused, deviations := 0, 0, 0
	for _, file := range []string{"jws_vectors.json", "jwk_vectors.json"} {
		for _, g := range readWycheproof(t, file).Groups {
			var keyAlg string
			var single struct {
				Alg string `json:"alg"`
			}
			if json.Unmarshal([]byte(g.JWK), &single) == nil {
				keyAlg = single.Alg
			}
			for _, tc := range g.Tests {
				name := fmt.Sprintf("%s #%d %s/%s", file, tc.ID, g.Comment, tc.Comment)
				ok, why := verifyWycheproof(g.JWK, tc.JWS)
				if !tc.Valid {
					assert.False(t, ok, "%s: Wycheproof says invalid, and it verified", name)
					refused++
					continue
				}
				tokenAlg := ""
				if jws, err := strict.ParseJWS(tc.JWS); err == nil {
					tokenAlg, _ = jws.Header["alg"].(string)
				}
				if reason := deviation(keyAlg, tokenAlg); reason != "" {
					assert.False(t, ok, "%s: a deliberate deviation (%s) was accepted", name, reason)
					deviations++
					continue
				}
				assert.True(t, ok, "%s: Wycheproof says valid, refused: %s", name, why)
				accepted++
			}
		}
	}
	t.Logf("Wycheproof: %d valid accepted, %d invalid refused, %d valid refused on purpose", accepted, refused, deviations)
	assert.Positive(t, accepted)
	assert.Greater(t, refused, 300)
}
