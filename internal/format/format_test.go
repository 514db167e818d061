package format_test

import (
	"encoding/gob"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
)

type cart struct{ Items []string }

func init() { gob.Register(cart{}) }

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	deadline := time.UnixMilli(1_790_000_000_123)
	when := time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)
	values := map[string]any{
		"s": "text", "b": []byte{0, 1, 2}, "t": true, "f": false, "i": -42, "I": int64(1 << 40),
		"x": 3.25, "w": when, "cart": cart{Items: []string{"tea"}}, "": "empty key",
	}
	c := format.Codec{}
	b, err := c.Encode(deadline, values)
	require.NoError(t, err)
	got, decoded, err := c.Decode(b)
	require.NoError(t, err)
	assert.True(t, deadline.Equal(got))
	assert.Equal(t, values, decoded)

	again, err := c.Encode(deadline, values)
	require.NoError(t, err)
	assert.Equal(t, b, again, "the same values encode the same way")

	decoded["b"].([]byte)[0] = 9
	_, fresh, _ := c.Decode(b)
	assert.Equal(t, []byte{0, 1, 2}, fresh["b"], "a decoded []byte is a copy")
}

// Common types have a compact form of their own: a deadline and two
// values in 32 bytes (this was store's ExampleCodec).
func TestCodecEncodesCommonValuesCompactly(t *testing.T) {
	t.Parallel()
	c := format.Codec{}
	b, err := c.Encode(time.UnixMilli(1_790_000_000_000), map[string]any{"cart": "3 items", "visits": 7})
	require.NoError(t, err)
	assert.Len(t, b, 32)
	deadline, values, err := c.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, "2026-09-21T14:13:20Z", deadline.UTC().Format(time.RFC3339))
	assert.Equal(t, map[string]any{"cart": "3 items", "visits": 7}, values)
}

func TestCodecIsCompact(t *testing.T) {
	t.Parallel()
	b, err := format.Codec{}.Encode(time.Now(), map[string]any{"sg": make([]byte, 100)})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), 100+14, "a record costs 14 bytes of framing at most")
}

func TestCodecRejectsWhatItDidNotEncode(t *testing.T) {
	t.Parallel()
	good, err := format.Codec{}.Encode(time.Now(), map[string]any{"k": "v", "c": cart{}})
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"empty": nil, "gob": {0x0e, 0xff}, "json": []byte(`{"k":"v"}`),
		"cut": good[:len(good)-1], "trailing": append(append([]byte{}, good...), 0),
		"huge count": {0xC5, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, _, err := format.Codec{}.Decode(b)
		assert.Error(t, err, name)
	}
}

func FuzzCodec(f *testing.F) {
	good, _ := format.Codec{}.Encode(time.UnixMilli(1), map[string]any{"k": "v", "n": 1, "b": []byte("x"), "c": cart{}})
	f.Add(good)
	f.Add([]byte{0xC5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		deadline, values, err := format.Codec{}.Decode(b)
		if err != nil {
			return
		}
		again, err := format.Codec{}.Encode(deadline, values)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it again: %v", b, err)
		}
		if _, _, err := (format.Codec{}).Decode(again); err != nil {
			t.Fatalf("cannot decode its own encoding of %q: %v", b, err)
		}
	})
}

// Names compares a store key with a selector's, without an allocation.
func TestSelectorNames(t *testing.T) {
	s := format.NewSecret([]byte("names-secret-0123456789abcdef"))
	sel, other := s.Selector("token-one"), s.Selector("token-two")
	key := sel.Key()
	assert.True(t, sel.Names(key))
	assert.False(t, sel.Names(other.Key()))
	assert.False(t, sel.Names(key[:len(key)-1]), "a shorter key")
	assert.False(t, sel.Names(key+"A"), "a longer key")
	assert.False(t, sel.Names(""))
	assert.Zero(t, testing.AllocsPerRun(100, func() { sel.Names(key) }))
}
