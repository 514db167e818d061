package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// Session tokens are split tokens: 32 bytes, base64url without padding (43
// characters, the shape scs itself generates). The first 16 bytes, the
// selector, name the session in the store; the last 16, the validator,
// prove the right to it. A store keeps the selector (as Key) and a hash of
// the validator, never the token, so a copy of the store cannot be turned
// back into tokens, and a lookup costs one read by key.
const (
	// TokenLen is the length of a session token.
	TokenLen = 43
	// SelectorLen and ValidatorLen are the sizes of a token's two halves.
	SelectorLen, ValidatorLen = 16, 16
	// NonceLen is the size of the nonce a session is minted with (Mint).
	NonceLen = 8
)

// Token returns the session token made of selector and validator.
func Token(selector [SelectorLen]byte, validator [ValidatorLen]byte) string {
	var b [SelectorLen + ValidatorLen]byte
	copy(b[:], selector[:])
	copy(b[SelectorLen:], validator[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// KeyOf returns the store key of a selector: 22 base64url characters.
func KeyOf(selector [SelectorLen]byte) string {
	b := keyBytes(selector)
	return string(b[:])
}

// keyLen is the length of a store key.
const keyLen = 22

// keyBytes is KeyOf without an allocation, for map lookups.
func keyBytes(selector [SelectorLen]byte) [keyLen]byte {
	var b [keyLen]byte
	base64.RawURLEncoding.Encode(b[:], selector[:])
	return b
}

// Key returns the store key of a session token, and "" when token is not
// a session token.
func Key(token string) string {
	sel, _, ok := split(token)
	if !ok {
		return ""
	}
	return KeyOf(sel)
}

// split decodes a session token into its halves.
func split(token string) (sel [SelectorLen]byte, val [ValidatorLen]byte, ok bool) {
	var b [SelectorLen + ValidatorLen]byte
	if len(token) != TokenLen {
		return sel, val, false
	}
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(token)); err != nil || n != len(b) {
		return sel, val, false
	}
	copy(sel[:], b[:SelectorLen])
	copy(val[:], b[SelectorLen:])
	return sel, val, true
}

// A stored value is framed so that both stores, and the Redis scripts
// (built from these constants), read it the same way:
//
//	live:  frameLive, SHA-256(validator)[:16], nonce (NonceLen bytes),
//	       credential (CredentialLen bytes), record length (2 bytes, big
//	       endian), record, scs values (the Codec's bytes)
//	ended: frameEnded
//
// The record is sessiongate's own description of the session; the scs
// values are the handler's. Keeping them apart is what keeps the record out
// of scs's API (Keys, Clear): Find hands scs the values only, and Commit
// replaces the values only.
const (
	frameLive   = 0x01
	frameEnded  = 0x00
	verifierAt  = 1
	nonceAt     = verifierAt + 16
	credAt      = nonceAt + NonceLen
	recordLenAt = credAt + CredentialLen
	recordAt    = recordLenAt + 2
	// MaxRecordLen is the largest record a session can keep.
	MaxRecordLen = 1<<16 - 1
)

// CredentialLen is the size of the credential id a session keeps (Mint).
const CredentialLen = 8

// ended is the value an ended session leaves at its key.
var ended = []byte{frameEnded}

// verifier returns the frame prefix a token's validator must match.
func verifier(val [ValidatorLen]byte) [nonceAt]byte {
	var v [nonceAt]byte
	v[0] = frameLive
	sum := sha256.Sum256(val[:])
	copy(v[verifierAt:], sum[:16])
	return v
}

// frame returns the stored value of a live session. The record must be at
// most MaxRecordLen bytes (Mint checks).
func frame(val [ValidatorLen]byte, nonce []byte, cred [CredentialLen]byte, record, values []byte) []byte {
	v := verifier(val)
	out := make([]byte, recordAt+len(record)+len(values))
	copy(out, v[:])
	copy(out[nonceAt:credAt], nonce) // a shorter nonce is padded with zeros
	copy(out[credAt:recordLenAt], cred[:])
	out[recordLenAt] = byte(len(record) >> 8)
	out[recordLenAt+1] = byte(len(record))
	copy(out[recordAt:], record)
	copy(out[recordAt+len(record):], values)
	return out
}

// padNonce returns nonce as a frame keeps it: NonceLen bytes, padded with
// zeros.
func padNonce(nonce []byte) []byte {
	var b [NonceLen]byte
	copy(b[:], nonce)
	return b[:]
}

// reframe returns raw (a live frame) with its record or its values
// replaced; nil leaves that part as it is.
func reframe(raw, record, values []byte) []byte {
	st := stored(raw)
	if record == nil {
		record = st.Record
	}
	if values == nil {
		values = st.Data
	}
	out := make([]byte, 0, recordAt+len(record)+len(values))
	out = append(out, raw[:recordLenAt]...)
	out = append(out, byte(len(record)>>8), byte(len(record)))
	out = append(out, record...)
	return append(out, values...)
}

// open returns the scs values of a live session stored as raw when val is
// the validator it was minted with.
func open(raw []byte, val [ValidatorLen]byte) ([]byte, bool) {
	if !opens(raw, val) {
		return nil, false
	}
	return stored(raw).Data, true
}

// opens reports whether raw is a live session that val opens.
func opens(raw []byte, val [ValidatorLen]byte) bool {
	if len(raw) < recordAt || raw[0] != frameLive {
		return false
	}
	v := verifier(val)
	return subtle.ConstantTimeCompare(raw[:nonceAt], v[:]) == 1
}

// Stored is what Lookup found at a key.
type Stored struct {
	// Data is a live session's scs values (the Codec's bytes).
	Data []byte
	// Record is a live session's record: sessiongate's own description of
	// it, kept apart from the scs values.
	Record []byte
	// Nonce is the nonce the live session was minted with.
	Nonce []byte
	// Credential is the credential id the live session was minted with
	// (Mint.Credential), zero when it had none.
	Credential [CredentialLen]byte
	// Ended is true when the key holds the mark of an ended session.
	Ended bool

	raw []byte
}

// Found reports whether anything was stored at the key.
func (s Stored) Found() bool { return s.raw != nil }

// Live reports whether a live session was stored at the key.
func (s Stored) Live() bool { return s.raw != nil && !s.Ended && s.Record != nil }

// stored reads a raw stored value. Garbage reads as found, neither live nor
// ended, so that Mint may replace it.
func stored(raw []byte) Stored {
	switch {
	case raw == nil:
		return Stored{}
	case len(raw) == 1 && raw[0] == frameEnded:
		return Stored{Ended: true, raw: raw}
	case len(raw) >= recordAt && raw[0] == frameLive:
		n := int(raw[recordLenAt])<<8 | int(raw[recordLenAt+1])
		if len(raw) < recordAt+n {
			return Stored{raw: raw}
		}
		return Stored{
			Record:     raw[recordAt : recordAt+n : recordAt+n],
			Data:       raw[recordAt+n:],
			Nonce:      raw[nonceAt:credAt],
			Credential: [CredentialLen]byte(raw[credAt:recordLenAt]),
			raw:        raw,
		}
	default:
		return Stored{raw: raw}
	}
}

// Opens reports whether s is a live session that token opens: token's
// validator is the one s was minted with. It compares in constant time.
func (s Stored) Opens(token string) bool {
	_, val, ok := split(token)
	return ok && s.Live() && opens(s.raw, val)
}

// Open returns the live session that token opens in st, with one read of
// st: a Stored that is not Live when there is none (not found is not an
// error). Pass the result to Prefetched so that scs's Load does not read
// again.
func Open(ctx context.Context, st Store, token string) (Stored, error) {
	sel, val, ok := split(token)
	if !ok {
		return Stored{}, nil
	}
	s, err := st.Lookup(ctx, KeyOf(sel))
	if err != nil || !s.Live() || !opens(s.raw, val) {
		return Stored{}, err
	}
	return s, nil
}

// same reports whether raw is what s was read from.
func (s Stored) same(raw []byte) bool {
	return (s.raw == nil) == (raw == nil) && bytes.Equal(s.raw, raw)
}

// prefetchKey is the context key of a Prefetched value.
type prefetchKey struct{}

type prefetched struct {
	key string
	s   Stored
}

// Prefetched returns a context in which finding key's session (FindCtx,
// which scs's Load calls) answers from s instead of reading the store
// again: for a caller that has just looked the session up.
func Prefetched(ctx context.Context, key string, s Stored) context.Context {
	return context.WithValue(ctx, prefetchKey{}, &prefetched{key: key, s: s})
}

// prefetchedRaw returns the raw value prefetched for key in ctx.
func prefetchedRaw(ctx context.Context, key []byte) ([]byte, bool) {
	p, ok := ctx.Value(prefetchKey{}).(*prefetched)
	if !ok || p.key != string(key) || !p.s.Live() {
		return nil, false
	}
	return p.s.raw, true
}

// find is FindCtx for either store: the session of token, from ctx's
// prefetched value or else from get (which reads the raw value at a key),
// if token's validator opens it.
func find(ctx context.Context, token string, get func(key [keyLen]byte) (raw []byte, found bool, err error)) ([]byte, bool, error) {
	sel, val, ok := split(token)
	if !ok {
		return nil, false, nil
	}
	key := keyBytes(sel)
	raw, ok := prefetchedRaw(ctx, key[:])
	if !ok {
		var err error
		if raw, ok, err = get(key); err != nil || !ok {
			return nil, false, err
		}
	}
	data, ok := open(raw, val)
	return data, ok, nil
}
