package format

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// Session tokens are split tokens: 32 bytes, base64url without padding (43
// characters, the shape scs itself generates). The first 16 bytes, the
// selector, name the session in the store; the last 16, the validator,
// prove the right to it. A store keeps the selector (as the Key) and a
// hash of the validator (the verifier), never the token, so a copy of the
// store cannot be turned back into tokens, and a lookup costs one read by
// key.
const (
	// TokenLen is the length of a session token.
	TokenLen = 43
	// SelectorLen and ValidatorLen are the sizes of a token's two halves.
	SelectorLen, ValidatorLen = 16, 16
	// KeyLen is the length of a store key: the selector in base64url.
	KeyLen = 22
	// NonceLen is the size of the nonce a session is minted with.
	NonceLen = 8
	// CredentialLen is the size of a session's credential id.
	CredentialLen = 8
	// VerifierLen is the size of the validator's hash a frame keeps.
	VerifierLen = 16
)

// strict decodes tokens and keys: base64url without padding, whose unused
// low bits must be zero.
var strict = base64.RawURLEncoding.Strict()

// Selector names a session; Validator opens it; Credential names the
// credential (the provider's TokenID) a session was minted from, zero
// when it has none.
type (
	Selector   [SelectorLen]byte
	Validator  [ValidatorLen]byte
	Credential [CredentialLen]byte
)

// Token returns the session token made of sel and val.
func Token(sel Selector, val Validator) string {
	var b [SelectorLen + ValidatorLen]byte
	copy(b[:], sel[:])
	copy(b[SelectorLen:], val[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Key returns the store key of sel: 22 base64url characters.
func (sel Selector) Key() string {
	b := sel.KeyBytes()
	return string(b[:])
}

// KeyBytes is Key without an allocation, for map lookups.
func (sel Selector) KeyBytes() [KeyLen]byte {
	var b [KeyLen]byte
	base64.RawURLEncoding.Encode(b[:], sel[:])
	return b
}

// KeyOf returns the store key of a session token, and "" when token is
// not a session token.
func KeyOf(token string) string {
	sel, _, ok := Split(token)
	if !ok {
		return ""
	}
	return sel.Key()
}

// SelectorOf returns the selector a store key encodes, and false for
// anything that is not a store key.
func SelectorOf(key string) (sel Selector, ok bool) {
	if len(key) != KeyLen {
		return sel, false // Decode would write past sel
	}
	n, err := strict.Decode(sel[:], []byte(key))
	return sel, err == nil && n == SelectorLen
}

// ValidToken reports whether s has the shape of a session token: TokenLen
// base64url characters. Anything else never reaches a store.
func ValidToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Split decodes a session token into its halves. Only the one spelling
// Token writes splits: base64's unused low bits must be zero, so that no
// two strings name one session.
func Split(token string) (sel Selector, val Validator, ok bool) {
	var b [SelectorLen + ValidatorLen]byte
	if len(token) != TokenLen {
		return sel, val, false
	}
	if n, err := strict.Decode(b[:], []byte(token)); err != nil || n != len(b) {
		return sel, val, false
	}
	copy(sel[:], b[:SelectorLen])
	copy(val[:], b[SelectorLen:])
	return sel, val, true
}

// A stored value is framed so that both stores, and the Redis scripts
// (built from these constants: see the Redis backend's luaFrame), read it
// the same way:
//
//	live:  FrameLive, verifier (VerifierLen bytes: SHA-256(validator)),
//	       nonce (NonceLen bytes), credential (CredentialLen bytes),
//	       record length (2 bytes, big endian), record, scs values (the
//	       Codec's bytes)
//	ended: FrameEnded
//
// The record is sessiongate's own description of the session (record.go);
// the scs values are the handler's. Keeping them apart is what keeps the
// record out of scs's API (Keys, Clear): scs gets the values only, and a
// commit replaces the values only.
const (
	FrameLive   = 0x01
	FrameEnded  = 0x00
	VerifierAt  = 1
	NonceAt     = VerifierAt + VerifierLen
	CredAt      = NonceAt + NonceLen
	RecordLenAt = CredAt + CredentialLen
	RecordAt    = RecordLenAt + 2
	// MaxRecordLen is the largest record a session can keep.
	MaxRecordLen = 1<<16 - 1
)

// Ended is the value an ended session leaves at its key. Do not modify.
var Ended = []byte{FrameEnded}

// Verifier is the frame prefix a token's validator must match:
// FrameLive and the validator's hash.
type Verifier [NonceAt]byte

// VerifierOf returns val's Verifier.
func VerifierOf(val Validator) Verifier {
	var v Verifier
	v[0] = FrameLive
	sum := sha256.Sum256(val[:])
	copy(v[VerifierAt:], sum[:VerifierLen])
	return v
}

// Frame returns the stored value of a live session. The record must be at
// most MaxRecordLen bytes; a nonce shorter than NonceLen is padded with
// zeros.
func Frame(val Validator, nonce []byte, cred Credential, record, values []byte) []byte {
	v := VerifierOf(val)
	out := make([]byte, RecordAt+len(record)+len(values))
	copy(out, v[:])
	copy(out[NonceAt:CredAt], nonce)
	copy(out[CredAt:RecordLenAt], cred[:])
	out[RecordLenAt] = byte(len(record) >> 8)
	out[RecordLenAt+1] = byte(len(record))
	copy(out[RecordAt:], record)
	copy(out[RecordAt+len(record):], values)
	return out
}

// PadNonce returns nonce as a frame keeps it: NonceLen bytes, padded with
// zeros.
func PadNonce(nonce []byte) []byte {
	var b [NonceLen]byte
	copy(b[:], nonce)
	return b[:]
}

// Reframe returns raw (a live frame) with its record or its values
// replaced; nil leaves that part as it is.
func Reframe(raw, record, values []byte) []byte {
	st := Parse(raw)
	if record == nil {
		record = st.Record
	}
	if values == nil {
		values = st.Data
	}
	out := make([]byte, 0, RecordAt+len(record)+len(values))
	out = append(out, raw[:RecordLenAt]...)
	out = append(out, byte(len(record)>>8), byte(len(record)))
	out = append(out, record...)
	return append(out, values...)
}

// Opens reports whether raw is a live frame that val opens, comparing in
// constant time.
func Opens(raw []byte, val Validator) bool {
	if len(raw) < RecordAt || raw[0] != FrameLive {
		return false
	}
	v := VerifierOf(val)
	return subtle.ConstantTimeCompare(raw[:NonceAt], v[:]) == 1
}

// Stored is what a store holds at a key, parsed.
type Stored struct {
	// Data is a live session's scs values (the Codec's bytes).
	Data []byte
	// Record is a live session's record: sessiongate's own description of
	// it, kept apart from the scs values.
	Record []byte
	// Nonce is the nonce the live session was minted with.
	Nonce []byte
	// Credential is the credential id the live session was minted with,
	// zero when it had none.
	Credential Credential
	// Ended is true when the key holds the mark of an ended session.
	Ended bool

	raw []byte
}

// Parse reads a stored value (nil: nothing stored). Garbage reads as
// found, neither live nor ended, so that a mint may replace it.
func Parse(raw []byte) Stored {
	switch {
	case raw == nil:
		return Stored{}
	case len(raw) == 1 && raw[0] == FrameEnded:
		return Stored{Ended: true, raw: raw}
	case len(raw) >= RecordAt && raw[0] == FrameLive:
		n := int(raw[RecordLenAt])<<8 | int(raw[RecordLenAt+1])
		if len(raw) < RecordAt+n {
			return Stored{raw: raw}
		}
		return Stored{
			Record:     raw[RecordAt : RecordAt+n : RecordAt+n],
			Data:       raw[RecordAt+n:],
			Nonce:      raw[NonceAt:CredAt],
			Credential: Credential(raw[CredAt:RecordLenAt]),
			raw:        raw,
		}
	default:
		return Stored{raw: raw}
	}
}

// Found reports whether anything was stored at the key.
func (s Stored) Found() bool { return s.raw != nil }

// Live reports whether a live session was stored at the key.
func (s Stored) Live() bool { return s.raw != nil && !s.Ended && s.Record != nil }

// Raw returns the stored value s was parsed from (nil: nothing). Do not
// modify it.
func (s Stored) Raw() []byte { return s.raw }

// Opens reports whether s is a live session that token opens: token's
// validator is the one s was minted with. It compares in constant time.
func (s Stored) Opens(token string) bool {
	_, val, ok := Split(token)
	return ok && s.Live() && Opens(s.raw, val)
}

// Same reports whether raw is what s was parsed from.
func (s Stored) Same(raw []byte) bool {
	return (s.raw == nil) == (raw == nil) && bytes.Equal(s.raw, raw)
}

// SameNonce reports whether s is a live session minted with nonce.
func (s Stored) SameNonce(nonce []byte) bool {
	return s.Live() && bytes.Equal(s.Nonce, PadNonce(nonce))
}
