// Package format is sessiongate's session format, in one place: how a
// frontend token becomes a session's selector, store key, validator,
// session token, verifier, public id, credential id and sign-out mark
// (the table below), what a store keeps at a key (the frame), the scs
// values inside it (Codec) and the session record (record.go). The
// stores, the Redis scripts (built from the frame's constants) and the
// engine read and write sessions through this package alone.
package format

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"hash"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/sessiongate/sessiongate/internal/wire"
)

// The whole derivation, from the frontend token a client presents to what
// a store keeps. Secret is Config.Secret; H(p, x) is HMAC-SHA256(Secret,
// p NUL x); "|n" keeps the first n bytes; b64 is base64url without
// padding.
//
//	frontend token F ─┬─ selector  S = H("sessiongate selector", F)|16
//	                  │    store key K = b64(S)               22 chars: names the session
//	                  └─ validator V = H("sessiongate validator", F nonce)|16
//	                                                          nonce: 8 random bytes per mint
//	session token   T = b64(S V)                              43 chars: cookie / X-Session-Token
//	verifier          = SHA-256(V)|16                         in the frame: T opens it, it does not give T
//	public id         = b64(SHA-256("sessiongate public id" NUL K NUL nonce)|16)
//	                                                          or the continued session's (record.go)
//	credential id   C = H("sessiongate credential", provider NUL TokenID)|8
//	                                                          zero when the provider names no TokenID
//	mark key          = b64(H("sessiongate credential mark", provider ":" user C)|16)
//	                                                          where a signed-out credential's mark lives
//	user index        = provider ":" user                     the key of a user's session index
//	fingerprint       = H("sessiongate store fingerprint", "") names the secret in the store
//	cursor key        = H("sessiongate listing cursor", "")    seals listing cursors (engine/list.go)
//
//	stored at K:  FrameLive verifier nonce C len(record) record scs-values  (frame.go)
//	              or FrameEnded: the mark of an ended session
//
// A session minted again from the same frontend token (after an expiry)
// has the same key and a new nonce: a new session token, which no earlier
// holder knows, and a new public id.

// Secret derives keys from the deployment's secret. It is safe for
// concurrent use.
type Secret struct {
	key []byte
	// macs holds *keyedMAC: HMAC-SHA256 states keyed by key, reset and
	// reused, so that a derivation allocates nothing and hashes the key
	// pads no more (hmac's Reset restores its keyed state).
	macs sync.Pool
}

// keyedMAC is one reusable HMAC-SHA256 keyed with a Secret's key, with
// room for its sum (a sum written through the hash.Hash interface would
// escape to the heap).
type keyedMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// NewSecret returns the derivations keyed by secret, which it keeps.
func NewSecret(secret []byte) *Secret {
	s := &Secret{key: secret}
	s.macs.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, s.key)} }
	return s
}

// sum returns H(purpose, token extra). It hashes token in place: a
// frontend token may be 8 KiB, and a copy of it per derivation would be
// most of a bearer request's allocations.
func (s *Secret) sum(purpose, token string, extra []byte) [sha256.Size]byte {
	m := s.macs.Get().(*keyedMAC)
	m.h.Reset()
	m.h.Write(bytesOf(purpose))
	m.h.Write(nul[:])
	m.h.Write(bytesOf(token))
	m.h.Write(extra)
	m.h.Sum(m.sum[:0])
	sum := m.sum
	s.macs.Put(m)
	return sum
}

var nul = [1]byte{0}

// bytesOf returns the bytes of str without copying them, for a hash to
// read: they must not be modified.
func bytesOf(str string) []byte {
	return unsafe.Slice(unsafe.StringData(str), len(str))
}

// Selector returns the selector of the sessions minted from front, a
// frontend token.
func (s *Secret) Selector(front string) Selector {
	sum := s.sum("sessiongate selector", front, nil)
	return Selector(sum[:SelectorLen])
}

// Key returns the store key of the sessions minted from front.
func (s *Secret) Key(front string) string { return s.Selector(front).Key() }

// Token returns the session token of the session minted from front (whose
// selector is sel) with nonce.
func (s *Secret) Token(front string, sel Selector, nonce []byte) string {
	sum := s.sum("sessiongate validator", front, nonce)
	return Token(sel, Validator(sum[:ValidatorLen]))
}

// Credential returns the credential id of a token of provider whose
// TokenID is tokenID: zero when tokenID is "" (the frontend token itself
// then is the credential, and the session's key already stands for it).
func (s *Secret) Credential(provider, tokenID string) (c Credential) {
	if tokenID == "" {
		return c
	}
	sum := s.sum("sessiongate credential", provider+"\x00"+tokenID, nil)
	return Credential(sum[:CredentialLen])
}

// Mark returns the store key of the sign-out mark of credential c of the
// user whose index is user (UserIndex), "" for a zero c. It is derived
// from what every session of the credential keeps, so that ending any of
// them marks every spelling of the credential.
func (s *Secret) Mark(user string, c Credential) string {
	if c == (Credential{}) {
		return ""
	}
	sum := s.sum("sessiongate credential mark", user, c[:])
	return Selector(sum[:SelectorLen]).Key()
}

// Fingerprint names the secret without revealing it: what a store keeps
// to tell processes with another secret.
func (s *Secret) Fingerprint() []byte {
	sum := s.sum("sessiongate store fingerprint", "", nil)
	return sum[:]
}

// CursorKey returns the key that seals listing cursors (package engine),
// derived from the secret for that use alone.
func (s *Secret) CursorKey() []byte {
	sum := s.sum("sessiongate listing cursor", "", nil)
	return sum[:]
}

// UserIndex is the key of a user's session index: users are distinct per
// provider.
func UserIndex(provider, user string) string { return provider + ":" + user }

// PublicID derives a session's public id from its store key and the nonce
// it was minted with: one more one-way hash, 128 bits, so neither the
// token nor the store key can be recovered from it, and a session minted
// again from the same frontend token has another id. A session that
// continues another keeps that one's public id instead (see record.go).
func PublicID(key string, nonce []byte) string {
	sum := sha256.Sum256([]byte("sessiongate public id\x00" + key + "\x00" + string(nonce)))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// publicIDBytes decodes a public id, and reports false for anything else.
func publicIDBytes(id string) (b [16]byte, ok bool) {
	if len(id) != 22 {
		return b, false // Decode would write past b
	}
	n, err := strict.Decode(b[:], []byte(id))
	return b, err == nil && n == 16
}

// NewNonce returns NonceLen bytes from crypto/rand.
func NewNonce() []byte {
	b := make([]byte, NonceLen)
	rand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return b
}

// Equal compares two keys, ids or tokens in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

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
	// SelectorChars is how many leading characters of a session token
	// encode its selector alone (21 × 6 bits of its 128): a prefix that
	// names a session without anything of the validator.
	SelectorChars = 21
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

// Names reports, in constant time, whether key is sel's store key (Key),
// without an allocation.
func (sel Selector) Names(key string) bool {
	b := sel.KeyBytes()
	return len(key) == KeyLen && subtle.ConstantTimeCompare(b[:], []byte(key)) == 1
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

// Codec is a compact scs.Codec, the one the middleware's scs manager
// uses. A session with a few string or []byte values costs tens of bytes
// and a handful of allocations to decode, where scs's GobCodec spends
// about 200 allocations building a decoder on every request.
//
// Strings, []byte, bool, int, int64, float64 and time.Time values have a
// binary form of their own. Any other value is encoded with encoding/gob,
// all such values together, so (as with scs's GobCodec) its type must be
// registered with gob.Register. Decoded []byte values are copies: a
// handler may keep or change them.
//
// The deadline is kept to the millisecond. Decode rejects anything that is
// not exactly one encoded session.
type Codec struct{}

const codecVersion = 0xC5

// Value tags.
const (
	tagString  = 's'
	tagBytes   = 'b'
	tagTrue    = 'T'
	tagFalse   = 'F'
	tagInt     = 'i'
	tagInt64   = 'I'
	tagFloat64 = 'f'
	tagTime    = 't'
)

var errCodec = errors.New("store: not a session encoded by sessiongate's codec")

// Encode encodes deadline and values, keys in sorted order.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, uint64(max(deadline.UnixMilli(), 0)))
	names := make([]string, 0, len(values))
	var rest map[string]any
	for k, v := range values {
		switch v.(type) {
		case string, []byte, bool, int, int64, float64, time.Time:
			names = append(names, k)
		default:
			if rest == nil {
				rest = map[string]any{}
			}
			rest[k] = v
		}
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendBytes(b, []byte(k))
		switch v := values[k].(type) {
		case string:
			b = appendBytes(append(b, tagString), []byte(v))
		case []byte:
			b = appendBytes(append(b, tagBytes), v)
		case bool:
			if v {
				b = append(b, tagTrue)
			} else {
				b = append(b, tagFalse)
			}
		case int:
			b = binary.AppendVarint(append(b, tagInt), int64(v))
		case int64:
			b = binary.AppendVarint(append(b, tagInt64), v)
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(v))
		case time.Time:
			t, err := v.MarshalBinary()
			if err != nil {
				return nil, err
			}
			b = appendBytes(append(b, tagTime), t)
		}
	}
	if rest == nil {
		return binary.AppendUvarint(b, 0), nil
	}
	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(rest); err != nil {
		return nil, err
	}
	return appendBytes(b, g.Bytes()), nil
}

// Decode decodes what Encode encoded.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	d := wire.Reader{B: b}
	if d.Byte() != codecVersion {
		return time.Time{}, nil, errCodec
	}
	var deadline time.Time
	if ms := d.Uvarint(); ms > 0 && ms <= math.MaxInt64 {
		deadline = time.UnixMilli(int64(ms))
	}
	n := d.Uvarint()
	if n > uint64(len(b)) {
		return time.Time{}, nil, errCodec
	}
	values := make(map[string]any, n)
	for range n {
		k := internKey(d.Bytes())
		switch d.Byte() {
		case tagString:
			values[k] = string(d.Bytes())
		case tagBytes:
			values[k] = bytes.Clone(d.Bytes())
		case tagTrue:
			values[k] = true
		case tagFalse:
			values[k] = false
		case tagInt:
			values[k] = int(d.Varint())
		case tagInt64:
			values[k] = d.Varint()
		case tagFloat64:
			values[k] = math.Float64frombits(binary.LittleEndian.Uint64(d.Next(8)))
		case tagTime:
			var t time.Time
			if err := t.UnmarshalBinary(d.Bytes()); err != nil {
				d.Fail()
			}
			values[k] = t
		default:
			d.Fail()
		}
		if d.Err {
			return time.Time{}, nil, errCodec
		}
	}
	if g := d.Bytes(); len(g) > 0 && !d.Err {
		var rest map[string]any
		if err := gob.NewDecoder(bytes.NewReader(g)).Decode(&rest); err != nil {
			return time.Time{}, nil, err
		}
		for k, v := range rest {
			values[k] = v
		}
	}
	if d.Err || len(d.B) != 0 {
		return time.Time{}, nil, errCodec
	}
	return deadline, values, nil
}

// keys interns value names: an application uses a handful, and a decode
// then allocates none for them.
var keys = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxInternedKeys = 1024

func internKey(b []byte) string {
	keys.RLock()
	k, ok := keys.m[string(b)]
	keys.RUnlock()
	if ok {
		return k
	}
	k = string(b)
	keys.Lock()
	if len(keys.m) < maxInternedKeys {
		keys.m[k] = k
	}
	keys.Unlock()
	return k
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}
