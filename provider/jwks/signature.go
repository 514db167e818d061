package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256
	_ "crypto/sha512" // SHA-384 and SHA-512 for the others
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
)

// verifySignature reports whether sig is a signature of signingInput by
// key with alg, exactly as RFC 7518 §3 (and RFC 8037 for EdDSA) defines
// each: RSASSA-PKCS1-v1_5; RSASSA-PSS with MGF1 of the same hash and a
// salt as long as the hash (Go's default accepts any salt length); ECDSA
// as r||s, each exactly the curve's size in bytes; Ed25519. An RSA key
// under 2048 bits never verifies.
func verifySignature(key any, alg string, signingInput string, sig []byte) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return false
		}
		h, pss, ok := rsaHash(alg)
		if !ok {
			return false
		}
		digest := sum(h, signingInput)
		if pss {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		curve, h, size := ecParams(alg)
		if curve == nil || k.Curve != curve || len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, sum(h, signingInput), r, s)
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA) && len(k) == ed25519.PublicKeySize && ed25519.Verify(k, []byte(signingInput), sig)
	}
	return false
}

// rsaHash returns the hash of an RSA alg and whether it is PSS.
func rsaHash(alg string) (crypto.Hash, bool, bool) {
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		return crypto.SHA256, false, true
	case jose.RS384:
		return crypto.SHA384, false, true
	case jose.RS512:
		return crypto.SHA512, false, true
	case jose.PS256:
		return crypto.SHA256, true, true
	case jose.PS384:
		return crypto.SHA384, true, true
	case jose.PS512:
		return crypto.SHA512, true, true
	}
	return 0, false, false
}

// ecParams returns the curve, hash and scalar size in bytes of an ECDSA
// alg, or a nil curve.
func ecParams(alg string) (elliptic.Curve, crypto.Hash, int) {
	switch jose.SignatureAlgorithm(alg) {
	case jose.ES256:
		return elliptic.P256(), crypto.SHA256, 32
	case jose.ES384:
		return elliptic.P384(), crypto.SHA384, 48
	case jose.ES512:
		return elliptic.P521(), crypto.SHA512, 66
	}
	return nil, 0, 0
}

func sum(h crypto.Hash, s string) []byte {
	w := h.New()
	w.Write([]byte(s))
	return w.Sum(nil)
}
