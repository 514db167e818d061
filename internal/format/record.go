package format

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/internal/wire"
	"github.com/sessiongate/sessiongate/provider"
)

// A record is a Session in a compact binary form, about 100 bytes for a
// typical identity, so that a session with its index entry fits in 400
// bytes of Redis:
//
//	version 2
//	created (unix ms), last seen and expires (ms after created)
//	flags, [token expiry (ms after created)], [public id (16 bytes)],
//	[predecessors: count, then each: selector (16 bytes), credential id
//	(8 bytes), until (ms after created)], [auth time (ms after created)]
//	user id, provider, upstream session id (UUIDs in 16 bytes)
//	client IP (4 or 16 bytes), User-Agent (common fragments as one byte)
//	claims (common names as one byte; values equal to the user id, the
//	upstream session id or the token expiry as one byte)
//
// The store key is not stored: it is derived from the session token. The
// public id is derived from the store key too, except for a session that
// continues another (a new sign-in on the same device), which keeps the
// public id of the session it continues. The record is kept beside the
// scs values, not among them (see Stored), so handlers never see it.

// RecordVersion is the record's first byte (the Redis store's mint
// script reads it, with created and last seen, to find the least
// recently used sessions).
const RecordVersion = 2

// Session is a session as a store keeps it: its record, with what its key
// and frame say.
type Session struct {
	// ID is the session's public id (PublicID, or the continued
	// session's).
	ID string
	// Identity is who the session belongs to.
	Identity provider.Identity
	// Created is when the device first signed in; LastSeen the last
	// recorded activity; Expires when the session ends.
	Created, LastSeen, Expires time.Time
	// AuthTime is when the user last authenticated at the provider: the
	// token's auth_time, else when the token was exchanged. A record
	// without one (written before it was kept, or equal to Created)
	// decodes with AuthTime = Created.
	AuthTime time.Time
	// ClientIP and UserAgent are the client's, at the mint.
	ClientIP, UserAgent string

	// Key is the session's store key, Nonce the nonce it was minted with,
	// Credential its credential id (zero: none).
	Key        string
	Nonce      []byte
	Credential Credential
	// Preds are the sessions it continues, oldest first.
	Preds []Predecessor
}

// Predecessor is a session that a session continues (the same device
// signed in again with another frontend token): what its sign-out must
// mark too, so that the tokens the device used are signed out with it.
type Predecessor struct {
	Key        string     // its store key: its frontend token's
	Credential Credential // its credential id
	Until      time.Time  // how long its marks must last
}

// MaxPredecessors bounds the predecessors a session keeps: those whose
// token expired are dropped first, then the oldest. A device that signed
// in again more often than this within one token's life has its oldest
// tokens out of reach of its sign-out.
const MaxPredecessors = 16

// Continues reports whether s continues the session of store key key
// whose frontend token has not expired at now (a predecessor counts until
// its Until).
func (s *Session) Continues(key string, now time.Time) bool {
	for _, p := range s.Preds {
		if p.Key == key && now.Before(p.Until) {
			return true
		}
	}
	return false
}

const (
	flagTokenExpiry = 1 << iota
	flagPublicID
	flagPredecessors
	flagAuthTime
)

var errRecord = errors.New("sessiongate: not a session record")

// EncodeRecord returns s's record. Key, Nonce and Credential are not in
// it: the key and frame keep them.
func EncodeRecord(s *Session) []byte {
	created := s.Created.UnixMilli()
	b := make([]byte, 0, 128)
	b = append(b, RecordVersion)
	b = binary.AppendUvarint(b, uint64(max(created, 0)))
	b = binary.AppendVarint(b, s.LastSeen.UnixMilli()-created)
	b = binary.AppendVarint(b, s.Expires.UnixMilli()-created)
	id := s.Identity
	var flags byte
	if !id.Expiry.IsZero() {
		flags |= flagTokenExpiry
	}
	ownID, continued := publicIDBytes(s.ID)
	if continued = continued && s.ID != PublicID(s.Key, s.Nonce); continued {
		flags |= flagPublicID
	}
	if len(s.Preds) > 0 {
		flags |= flagPredecessors
	}
	if !s.AuthTime.IsZero() && s.AuthTime.UnixMilli() != created {
		flags |= flagAuthTime
	}
	b = append(b, flags)
	if flags&flagTokenExpiry != 0 {
		b = binary.AppendVarint(b, id.Expiry.UnixMilli()-created)
	}
	if continued {
		b = append(b, ownID[:]...)
	}
	if len(s.Preds) > 0 {
		b = binary.AppendUvarint(b, uint64(len(s.Preds)))
		for _, p := range s.Preds {
			sel, _ := SelectorOf(p.Key)
			b = append(b, sel[:]...)
			b = append(b, p.Credential[:]...)
			b = binary.AppendVarint(b, p.Until.UnixMilli()-created)
		}
	}
	if flags&flagAuthTime != 0 {
		// Before 1970 is kept as 1970: the engine never mints one, and
		// the milliseconds of a time far enough back overflow.
		at := s.AuthTime.UnixMilli()
		if s.AuthTime.Before(time.Unix(0, 0)) {
			at = 0
		}
		b = binary.AppendVarint(b, at-created)
	}
	b = appendString(b, id.UserID)
	b = appendString(b, id.Provider)
	b = appendString(b, id.SessionID)
	b = appendIP(b, s.ClientIP)
	b = appendUserAgent(b, s.UserAgent)
	c := claimCodec{id: id, createdSec: created / 1000}
	return c.appendMap(b, id.Claims, 0)
}

// DecodeRecord returns the session stored at key as st (which must be
// Live), or an error when its record is not one.
func DecodeRecord(key string, st Stored) (*Session, error) {
	nonce, data := st.Nonce, st.Record
	d := reader{wire.Reader{B: data}}
	if d.Byte() != RecordVersion {
		return nil, errRecord
	}
	created := int64(d.Uvarint())
	s := &Session{
		ID:         PublicID(key, nonce),
		Created:    time.UnixMilli(created),
		LastSeen:   time.UnixMilli(created + d.Varint()),
		Expires:    time.UnixMilli(created + d.Varint()),
		Key:        key,
		Nonce:      nonce,
		Credential: st.Credential,
	}
	flags := d.Byte()
	if flags&flagTokenExpiry != 0 {
		s.Identity.Expiry = time.UnixMilli(created + d.Varint())
	}
	if flags&flagPublicID != 0 {
		s.ID = base64.RawURLEncoding.EncodeToString(d.Next(16))
	}
	if flags&flagPredecessors != 0 {
		n := d.Uvarint()
		if n > MaxPredecessors {
			return nil, errRecord
		}
		s.Preds = make([]Predecessor, n)
		for i := range s.Preds {
			s.Preds[i].Key = base64.RawURLEncoding.EncodeToString(d.Next(SelectorLen))
			copy(s.Preds[i].Credential[:], d.Next(CredentialLen))
			s.Preds[i].Until = time.UnixMilli(created + d.Varint())
		}
	}
	s.AuthTime = s.Created
	if flags&flagAuthTime != 0 {
		s.AuthTime = time.UnixMilli(created + d.Varint())
	}
	s.Identity.UserID = d.string()
	s.Identity.Provider = d.string()
	s.Identity.SessionID = d.string()
	s.ClientIP = d.ip()
	s.UserAgent = d.userAgent()
	c := claimCodec{id: s.Identity, createdSec: created / 1000}
	claims := c.readMap(&d, 0)
	if d.Err || len(d.B) != 0 {
		return nil, errRecord
	}
	if len(claims) > 0 {
		s.Identity.Claims = claims
	}
	return s, nil
}

// RecordLastSeen reads the last seen time from the start of a record
// (version, created, last seen: the store's scripts read the same
// prefix), without decoding the rest; false when it is not a record.
func RecordLastSeen(record []byte) (time.Time, bool) {
	d := wire.Reader{B: record}
	if d.Byte() != RecordVersion {
		return time.Time{}, false
	}
	created := int64(d.Uvarint())
	seen := created + d.Varint()
	if d.Err {
		return time.Time{}, false
	}
	return time.UnixMilli(seen), true
}

// Strings: uvarint(len<<1) and the bytes, or uvarint(1) and 16 bytes for a
// canonical lowercase UUID.
func appendString(b []byte, s string) []byte {
	if u, ok := parseUUID(s); ok {
		return append(append(b, 1), u[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if strings.ToLower(h) != h {
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

func formatUUID(u []byte) string {
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// IPs: 4 or 16 bytes after their length, or the string (length 1 + 2n)
// when it is not an address in canonical form.
func appendIP(b []byte, ip string) []byte {
	if ip == "" {
		return append(b, 0)
	}
	if a, err := netip.ParseAddr(ip); err == nil && a.String() == ip {
		raw := a.AsSlice()
		return append(append(b, byte(len(raw))), raw...)
	}
	b = append(b, 1)
	return appendString(b, ip)
}

// User-Agents: byte 1 and the User-Agent with common fragments replaced by
// bytes below 0x20, which a User-Agent header cannot hold; byte 0 and the
// plain text for one that holds such bytes anyway.
var uaFragments = func() []string {
	f := []string{
		") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64",
		" like Mac OS X) AppleWebKit/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS ",
		" (KHTML, like Gecko) Version/",
		"Mozilla/5.0 (X11; Linux x86_64",
		"Mozilla/5.0 (Linux; Android ",
		") Gecko/20100101 Firefox/",
		") AppleWebKit/605.1.15",
		" Mobile Safari/537.36",
		"Macintosh; Intel Mac OS X ",
		"python-requests/",
		"Go-http-client/",
		" Safari/537.36",
		"Mozilla/5.0 (",
		" Safari/604.1",
		" Mobile/15E148",
		"iPad; CPU OS ",
		"; Win64; x64",
		"Windows NT ",
		" Firefox/",
		" Chrome/",
		" Safari/",
		"okhttp/",
		".0.0.0",
		" Edg/",
		" OPR/",
		"curl/",
		"; rv:",
		"; K)",
	}
	sort.SliceStable(f, func(i, j int) bool { return len(f[i]) > len(f[j]) })
	return f
}()

func appendUserAgent(b []byte, ua string) []byte {
	for i := 0; i < len(ua); i++ {
		if ua[i] < 0x20 {
			return appendString(append(b, 0), ua)
		}
	}
	packed := make([]byte, 0, len(ua))
next:
	for i := 0; i < len(ua); {
		for n, f := range uaFragments {
			if strings.HasPrefix(ua[i:], f) {
				packed = append(packed, byte(n+1))
				i += len(f)
				continue next
			}
		}
		packed = append(packed, ua[i])
		i++
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(packed)))
	return append(b, packed...)
}

// Claims: a count, then for each claim, sorted by name, its name and its
// value. A name is uvarint(i) for claimNames[i], or
// uvarint(len(claimNames)+len) and the bytes.
var claimNames = []string{
	"id", "sub", "iss", "aud", "exp", "iat", "nbf", "jti", "sid", "azp",
	"uniqueSessionId", "profile", "valid", "email", "email_verified", "name",
	"data", "userId", "authType", "identifier", "oAuthMethod", "wallets",
	"scope", "client_id", "username", "token_type", "active", "address", "type",
}

var claimIndex = func() map[string]int {
	m := make(map[string]int, len(claimNames))
	for i, n := range claimNames {
		m[n] = i
	}
	return m
}()

// Value tags.
const (
	cNull byte = iota
	cFalse
	cTrue
	cString
	cInt       // zigzag varint of an integral float64
	cFloat     // 8 bytes
	cArray     // count, values
	cObject    // count, (name, value)...
	cUserID    // the identity's UserID
	cSessionID // the identity's SessionID
	cExpiry    // the identity's Expiry, in unix seconds
	cNearNow   // zigzag varint of seconds after created
	cJSON      // any other value, as JSON
)

// maxClaimDepth bounds nesting: deeper values are kept as JSON.
const maxClaimDepth = 16

type claimCodec struct {
	id         provider.Identity
	createdSec int64
}

func (c claimCodec) appendMap(b []byte, m map[string]any, depth int) []byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		if i, ok := claimIndex[k]; ok {
			b = binary.AppendUvarint(b, uint64(i))
		} else {
			b = binary.AppendUvarint(b, uint64(len(claimNames)+len(k)))
			b = append(b, k...)
		}
		b = c.appendValue(b, m[k], depth+1)
	}
	return b
}

func (c claimCodec) appendValue(b []byte, v any, depth int) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, cNull)
	case bool:
		if v {
			return append(b, cTrue)
		}
		return append(b, cFalse)
	case string:
		switch {
		case v != "" && v == c.id.UserID:
			return append(b, cUserID)
		case v != "" && v == c.id.SessionID:
			return append(b, cSessionID)
		}
		return appendString(append(b, cString), v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			switch n := int64(v); {
			case !c.id.Expiry.IsZero() && n == c.id.Expiry.Unix() && c.id.Expiry.Nanosecond() == 0:
				return append(b, cExpiry)
			case n-c.createdSec > -1<<20 && n-c.createdSec < 1<<20:
				return binary.AppendVarint(append(b, cNearNow), n-c.createdSec)
			default:
				return binary.AppendVarint(append(b, cInt), n)
			}
		}
		return binary.LittleEndian.AppendUint64(append(b, cFloat), math.Float64bits(v))
	case []any:
		if depth < maxClaimDepth {
			b = binary.AppendUvarint(append(b, cArray), uint64(len(v)))
			for _, e := range v {
				b = c.appendValue(b, e, depth+1)
			}
			return b
		}
	case map[string]any:
		if depth < maxClaimDepth {
			return c.appendMap(append(b, cObject), v, depth)
		}
	}
	// Another type (a provider's own) or too deep: as JSON, which is how it
	// would reach a client anyway. A value JSON cannot hold is dropped.
	j, err := json.Marshal(v)
	if err != nil {
		j = []byte("null")
	}
	b = binary.AppendUvarint(append(b, cJSON), uint64(len(j)))
	return append(b, j...)
}

func (c claimCodec) readMap(d *reader, depth int) map[string]any {
	n := d.Uvarint()
	if n == 0 || n > uint64(len(d.B)) || depth > maxClaimDepth+1 {
		if n != 0 {
			d.Fail()
		}
		return nil
	}
	m := make(map[string]any, n)
	for range n {
		var k string
		if i := d.Uvarint(); i < uint64(len(claimNames)) {
			k = claimNames[i]
		} else {
			k = string(d.Next(i - uint64(len(claimNames))))
		}
		m[k] = c.readValue(d, depth+1)
		if d.Err {
			return nil
		}
	}
	return m
}

func (c claimCodec) readValue(d *reader, depth int) any {
	switch d.Byte() {
	case cNull:
		return nil
	case cFalse:
		return false
	case cTrue:
		return true
	case cString:
		return d.string()
	case cInt:
		return float64(d.Varint())
	case cFloat:
		return math.Float64frombits(binary.LittleEndian.Uint64(d.Next(8)))
	case cArray:
		n := d.Uvarint()
		if n > uint64(len(d.B)) || depth > maxClaimDepth+1 {
			d.Fail()
			return nil
		}
		a := make([]any, n)
		for i := range a {
			a[i] = c.readValue(d, depth+1)
		}
		return a
	case cObject:
		m := c.readMap(d, depth)
		if m == nil {
			m = map[string]any{}
		}
		return m
	case cUserID:
		return c.id.UserID
	case cSessionID:
		return c.id.SessionID
	case cExpiry:
		return float64(c.id.Expiry.Unix())
	case cNearNow:
		return float64(c.createdSec + d.Varint())
	case cJSON:
		var v any
		if err := json.Unmarshal(d.Next(d.Uvarint()), &v); err != nil {
			d.Fail()
		}
		return v
	}
	d.Fail()
	return nil
}

// reader is a wire.Reader with the record's own forms.
type reader struct{ wire.Reader }

func (d *reader) string() string {
	n := d.Uvarint()
	if n == 1 {
		return formatUUID(d.Next(16))
	}
	if n&1 != 0 {
		d.Fail()
		return ""
	}
	return string(d.Next(n >> 1))
}

func (d *reader) ip() string {
	switch n := d.Byte(); n {
	case 0:
		return ""
	case 4, 16:
		a, _ := netip.AddrFromSlice(d.Next(uint64(n)))
		return a.String()
	case 1:
		return d.string()
	}
	d.Fail()
	return ""
}

func (d *reader) userAgent() string {
	switch d.Byte() {
	case 0:
		return d.string()
	case 1:
		packed := d.Next(d.Uvarint())
		var sb strings.Builder
		for _, c := range packed {
			if c >= 1 && int(c) <= len(uaFragments) {
				sb.WriteString(uaFragments[c-1])
			} else {
				sb.WriteByte(c)
			}
		}
		return sb.String()
	}
	d.Fail()
	return ""
}
