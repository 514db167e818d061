package providertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for SignBytes
	_ "crypto/sha512" // SHA-384 and SHA-512 for SignBytes
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Keys is a fake issuer's signing keys: it signs JWTs with its current key
// and publishes every key it has not retired as a JWKS. It is safe for
// concurrent use.
type Keys struct {
	mu    sync.Mutex
	keys  []signingKey // the last is current
	calls atomic.Int64
}

type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// NewKeys returns Keys with one RS256 key. The fakes serve theirs; tests
// and fuzz targets may also use Keys alone, with a fixed key set.
func NewKeys() *Keys {
	k := &Keys{}
	k.Rotate("RS256")
	return k
}

// Rotate makes a new key of alg ("RS256", "PS256", "ES256", "ES384",
// "EdDSA") the signing key and publishes it beside the old ones. It
// returns the new key's kid.
func (k *Keys) Rotate(alg string) string {
	var key crypto.Signer
	var err error
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic(fmt.Sprintf("providertest: cannot make a %q key", alg))
	}
	if err != nil {
		panic(fmt.Sprintf("providertest: generating a key: %v", err))
	}
	kid := "kid-" + randomString(10)
	k.mu.Lock()
	k.keys = append(k.keys, signingKey{kid: kid, alg: jose.SignatureAlgorithm(alg), key: key})
	k.mu.Unlock()
	return kid
}

// Retire stops publishing the key kid (it is no longer current either
// unless it is the only one left).
func (k *Keys) Retire(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) > 1 {
		k.keys = slices.DeleteFunc(k.keys, func(s signingKey) bool { return s.kid == kid })
	}
}

// Current returns the kid and algorithm of the signing key.
func (k *Keys) Current() (kid, alg string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.keys[len(k.keys)-1]
	return cur.kid, string(cur.alg)
}

// Sign returns a compact JWT of claims signed with the current key, with
// "kid" and "typ": "JWT" in its header.
func (k *Keys) Sign(claims any) string {
	return k.SignWithHeaders(nil, claims)
}

// SignWithHeaders is Sign with extra protected header parameters, such as
// "jku" or "x5u", to test that verifiers ignore them. A "kid" of "" in
// headers leaves the kid out.
func (k *Keys) SignWithHeaders(headers map[string]any, claims any) string {
	k.mu.Lock()
	cur := k.keys[len(k.keys)-1]
	k.mu.Unlock()
	return Sign(cur.alg, cur.key, cur.kid, headers, claims)
}

// Calls returns how many times the key set was asked for, answered or
// not.
func (k *Keys) Calls() int64 { return k.calls.Load() }

// JWKS returns the published key set, as served.
func (k *Keys) JWKS() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, s := range k.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("providertest: marshalling a JWKS: %v", err))
	}
	return b
}

func (k *Keys) serveJWKS(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(k.JWKS())
}

// Sign returns a compact JWT of claims signed by key with alg, carrying
// kid (when not empty) and headers in its protected header. Tests use it
// to sign with keys an issuer never published. Claims given as []byte are
// signed as they are, JSON or not.
func Sign(alg jose.SignatureAlgorithm, key crypto.Signer, kid string, headers map[string]any, claims any) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if v, ok := headers["kid"]; ok {
		kid, _ = v.(string)
	}
	for h, v := range headers {
		if h != "kid" {
			opts = opts.WithHeader(jose.HeaderKey(h), v)
		}
	}
	signingKey := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		signingKey.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(signingKey, opts)
	if err != nil {
		panic(fmt.Sprintf("providertest: signer: %v", err))
	}
	if raw, ok := claims.([]byte); ok {
		obj, err := signer.Sign(raw)
		if err != nil {
			panic(fmt.Sprintf("providertest: signing: %v", err))
		}
		token, _ := obj.CompactSerialize()
		return token
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(fmt.Sprintf("providertest: signing: %v", err))
	}
	return token
}

// SignRaw returns header.payload.signature: the given header and payload
// bytes, as they are (duplicate members, odd spellings, anything),
// encoded in unpadded base64url and signed with the current key as RFC
// 7518 defines its algorithm. The header must name "alg" (and "kid")
// itself: see Current. Tests use it for tokens a JOSE library would
// refuse to build.
func (k *Keys) SignRaw(header, payload []byte) string {
	k.mu.Lock()
	cur := k.keys[len(k.keys)-1]
	k.mu.Unlock()
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signing + "." + base64.RawURLEncoding.EncodeToString(SignBytes(cur.alg, cur.key, []byte(signing)))
}

// SignBytes returns the RFC 7518 signature of msg by key with alg: PKCS #1
// v1.5, PSS with a salt as long as the hash, ECDSA as fixed-size r||s, or
// Ed25519.
func SignBytes(alg jose.SignatureAlgorithm, key crypto.Signer, msg []byte) []byte {
	var h crypto.Hash
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		h = crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		h = crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		h = crypto.SHA512
	case jose.EdDSA:
		sig, err := key.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			panic(fmt.Sprintf("providertest: signing: %v", err))
		}
		return sig
	default:
		panic(fmt.Sprintf("providertest: cannot sign with %q", alg))
	}
	w := h.New()
	w.Write(msg)
	digest := w.Sum(nil)
	var opts crypto.SignerOpts = h
	if alg == jose.PS256 || alg == jose.PS384 || alg == jose.PS512 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		panic(fmt.Sprintf("providertest: signing: %v", err))
	}
	if ec, ok := key.Public().(*ecdsa.PublicKey); ok {
		var parsed struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(sig, &parsed); err != nil {
			panic(fmt.Sprintf("providertest: ECDSA signature: %v", err))
		}
		size := (ec.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		parsed.R.FillBytes(sig[:size])
		parsed.S.FillBytes(sig[size:])
	}
	return sig
}

// NegateES256 returns an ES256 token with its signature (r, s) replaced
// by (r, n-s): another valid signature of the same header and claims,
// which anyone can compute (ECDSA's malleability). It panics if token is
// not a compact JWS with a 64-byte signature.
func NegateES256(token string) string {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if dot < 0 || err != nil || len(sig) != 64 {
		panic("providertest: NegateES256 needs an ES256 token")
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
	s.FillBytes(sig[32:])
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}
