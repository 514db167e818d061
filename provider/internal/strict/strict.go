// Package strict reads what upstreams and tokens send exactly as written:
// JWS compact tokens whose every part is canonical unpadded base64url, and
// JSON objects whose member names are unique (at any depth) and matched
// byte for byte, never case-insensitively. Every reader of a token or an
// upstream answer in sessiongate's providers goes through it, so that one
// credential has one spelling and one meaning.
package strict

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// ErrMalformed is the error for a token that is not a canonical JWS compact
// serialization.
var ErrMalformed = errors.New("strict: not a canonical JWS compact serialization")

// ErrNotObject is the error for JSON that is not one object with unique
// member names.
var ErrNotObject = errors.New("strict: not a JSON object with unique member names")

// maxDepth bounds the nesting Object walks.
const maxDepth = 64

var b64 = base64.RawURLEncoding.Strict()

// JWS is a compact JWS whose parts decoded canonically.
type JWS struct {
	// Header is the protected header, a JSON object without duplicate
	// members.
	Header map[string]any
	// Payload is the decoded payload, not interpreted.
	Payload []byte
	// SigningInput is the first two parts and the dot between them, as
	// signed.
	SigningInput string
	// Signature is the decoded signature; empty for an unsigned token,
	// which no verifier accepts.
	Signature []byte
}

// ParseJWS splits token into its three parts and decodes them, refusing
// anything but three parts of canonical unpadded base64url (header and
// payload non-empty)
// (RFC 7515 §2: no "=", no characters outside the URL alphabet, zero
// trailing bits) whose header is a JSON object with unique member names.
func ParseJWS(token string) (*JWS, error) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || last == first+1 || strings.Count(token, ".") != 2 {
		return nil, ErrMalformed
	}
	rawHeader, err := b64.DecodeString(token[:first])
	if err != nil {
		return nil, ErrMalformed
	}
	payload, err := b64.DecodeString(token[first+1 : last])
	if err != nil {
		return nil, ErrMalformed
	}
	sig, err := b64.DecodeString(token[last+1:])
	if err != nil {
		return nil, ErrMalformed
	}
	header, err := Object(rawHeader)
	if err != nil {
		return nil, ErrMalformed
	}
	return &JWS{Header: header, Payload: payload, SigningInput: token[:last], Signature: sig}, nil
}

// TokenID names the credential: "jws:" and the unpadded base64url SHA-256
// of the signing input. The signing input of a canonical token is a
// function of the decoded header and payload alone, so every spelling of
// the token, and every other valid signature of the same header and
// claims (ECDSA's (r, n−s), a second randomized PSS signature), has the
// same TokenID.
func (j *JWS) TokenID() string {
	sum := sha256.Sum256([]byte(j.SigningInput))
	return "jws:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// LooksLikeJWS reports whether token is shaped like a JWS compact
// serialization: exactly two dots, and a first part whose first decoded
// byte is "{" in either base64 alphabet. Every spelling of a real JWS
// looks like one; opaque formats such as PASETO ("v4.local....") do not.
// It runs in O(len(token)) without allocating.
func LooksLikeJWS(token string) bool {
	if strings.Count(token, ".") != 2 || len(token) < 2 || token[0] != 'e' {
		return false
	}
	// '{' is 0x7B = 011110 11....: the first character is 'e' (30) and the
	// second one of the 16 characters whose value is 48 or more.
	c := token[1]
	return 'w' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '+' || c == '/'
}

// NonCanonicalJWS reports whether token looks like a JWS (LooksLikeJWS)
// but is not a canonical one: a second spelling of some token, or no
// token at all. Providers of opaque tokens refuse these before any call.
func NonCanonicalJWS(token string) bool {
	if !LooksLikeJWS(token) {
		return false
	}
	_, err := ParseJWS(token)
	return err != nil
}

// Object decodes raw as one JSON object whose member names are unique at
// every depth (after unescaping, so "exp" and "\u0065xp" are the same
// name), with numbers as float64. Member names are kept exactly as
// written: reading claims["exp"] never matches "EXP".
func Object(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := unique(dec, 0); err != nil {
		return nil, ErrNotObject
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, ErrNotObject
	}
	return m, nil
}

// unique reads one JSON value from dec, failing on a duplicate member name
// in any object of it or on nesting deeper than maxDepth.
func unique(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return ErrNotObject
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]struct{}{}
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := name.(string)
			if _, dup := seen[key]; dup {
				return ErrNotObject
			}
			seen[key] = struct{}{}
			if err := unique(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if err := unique(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}
