package format

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// typicalSession is a session minted from a Plurality token as the
// providers build it: claims id, uniqueSessionId, iat, exp and the answer's
// profile.
func typicalSession() *Session {
	created := time.UnixMilli(1_790_000_000_123)
	exp := time.Unix(1_790_003_600, 0)
	return &Session{
		ID: PublicID("key", nil),
		Identity: provider.Identity{
			UserID:    "8f14e45f-ceea-467f-a0d6-5f8c1c1e0a11",
			Provider:  "plurality",
			SessionID: "3b241101-e2bb-4255-8caf-4136c566a962",
			Expiry:    exp,
			Claims: map[string]any{
				"id": "8f14e45f-ceea-467f-a0d6-5f8c1c1e0a11", "uniqueSessionId": "3b241101-e2bb-4255-8caf-4136c566a962",
				"iat": float64(1_790_000_000), "exp": float64(1_790_003_600), "profile": map[string]any{"valid": true},
			},
		},
		Created:   created,
		LastSeen:  created,
		AuthTime:  created,
		Expires:   exp,
		ClientIP:  "203.0.113.7",
		UserAgent: chromeUA,
		Key:       "key",
	}
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Session){
		"typical": func(*Session) {},
		"no expiry, no claims, ipv6, odd agent": func(s *Session) {
			s.Identity.Expiry, s.Identity.Claims = time.Time{}, nil
			s.ClientIP, s.UserAgent = "2001:db8::1", "agent\x01with control bytes"
		},
		"odd values": func(s *Session) {
			s.ClientIP = "not an ip"
			s.Identity.UserID = "8F14E45F-CEEA-467F-A0D6-5F8C1C1E0A11" // not canonical: kept as text
			s.Identity.Claims = map[string]any{
				"n": nil, "f": 1.5, "big": float64(1 << 60), "neg": -3.0, "arr": []any{"x", 2.0, false, []any{}},
				"other claim name": "v", "empty": map[string]any{}, "sid": "8F14E45F-CEEA-467F-A0D6-5F8C1C1E0A11",
			}
			s.LastSeen = s.Created.Add(-time.Second) // a clock that went back
		},
		"authenticated again after the device's first sign-in": func(s *Session) {
			s.AuthTime = s.Created.Add(90 * time.Minute)
		},
	} {
		s := typicalSession()
		mutate(s)
		got, err := decodeRecord(EncodeRecord(s))
		require.NoError(t, err, name)
		for _, ts := range []*time.Time{&s.Created, &s.LastSeen, &s.Expires, &s.AuthTime, &s.Identity.Expiry, &got.Created, &got.LastSeen, &got.Expires, &got.AuthTime, &got.Identity.Expiry} {
			if !ts.IsZero() {
				*ts = ts.UTC()
			}
		}
		assert.Equal(t, s, got, name)
	}
}

// A record without an auth time (one written before it was kept, or a
// zero AuthTime) decodes with AuthTime = Created; and it costs no byte
// when it equals Created.
func TestRecordWithoutAuthTimeIsCreated(t *testing.T) {
	t.Parallel()
	s := typicalSession()
	s.AuthTime = time.Time{}
	old := EncodeRecord(s)
	got, err := decodeRecord(old)
	require.NoError(t, err)
	assert.True(t, got.AuthTime.Equal(s.Created), "AuthTime %v, want Created %v", got.AuthTime, s.Created)
	s.AuthTime = s.Created
	assert.Equal(t, old, EncodeRecord(s), "an auth time equal to Created is not stored")
	s.AuthTime = s.Created.Add(time.Hour)
	assert.Greater(t, len(EncodeRecord(s)), len(old))
}

func TestRecordLastSeen(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, time.Millisecond, -time.Second, 90 * time.Minute, 400 * 24 * time.Hour} {
		s := typicalSession()
		s.LastSeen = s.Created.Add(d)
		got, ok := RecordLastSeen(EncodeRecord(s))
		require.True(t, ok)
		assert.Equal(t, s.LastSeen.UnixMilli(), got.UnixMilli(), "%v", d)
	}
	_, ok := RecordLastSeen([]byte{RecordVersion, 0x80})
	assert.False(t, ok, "a truncated record")
	_, ok = RecordLastSeen(nil)
	assert.False(t, ok)
}

// An ID or a predecessor's key that cannot be decoded is not kept, and
// never panics: the decoders wrote past their 16 bytes for a longer one.
func TestRecordOfIDsThatDoNotDecode(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{strings.Repeat("A", 43), "short", "", strings.Repeat("*", 22)} {
		s := typicalSession()
		s.ID = bad
		s.Preds = []Predecessor{{Key: bad, Until: s.Expires}}
		got, err := decodeRecord(EncodeRecord(s))
		require.NoError(t, err, "%q", bad)
		assert.Equal(t, PublicID("key", nil), got.ID, "%q: the id derived from the key", bad)
		require.Len(t, got.Preds, 1)
		assert.Equal(t, Selector{}.Key(), got.Preds[0].Key, "%q: a zero selector", bad)
	}
}

func TestRecordOfATypicalSessionIsSmall(t *testing.T) {
	t.Parallel()
	// The Redis budget: 400 bytes per session with its index entry.
	assert.LessOrEqual(t, len(EncodeRecord(typicalSession())), 90)
}

func TestDeepClaimsAreKeptAsJSON(t *testing.T) {
	t.Parallel()
	s := typicalSession()
	deep := map[string]any{}
	for range 40 {
		deep = map[string]any{"d": deep}
	}
	s.Identity.Claims = map[string]any{"deep": deep, "odd": struct{ A int }{7}}
	got, err := decodeRecord(EncodeRecord(s))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"A": float64(7)}, got.Identity.Claims["odd"], "another type comes back as JSON would")
	d := got.Identity.Claims["deep"]
	for range 40 {
		d = d.(map[string]any)["d"]
	}
	assert.Equal(t, map[string]any{}, d)
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(typicalSession()))
	f.Add([]byte{RecordVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(EncodeRecord(s))
		if err != nil {
			t.Fatalf("decoded %q but not its encoding: %v", b, err)
		}
		if again.Identity.UserID != s.Identity.UserID || again.UserAgent != s.UserAgent || again.ClientIP != s.ClientIP {
			t.Fatalf("%q does not survive a round trip", b)
		}
	})
}

// decodeRecord is DecodeRecord of a record stored at "key" with no nonce.
func decodeRecord(record []byte) (*Session, error) {
	return DecodeRecord("key", Stored{Record: record})
}
