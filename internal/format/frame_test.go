package format_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
)

// A session token is a selector, which names the store key, and a
// validator, of which the store keeps only a hash.
func TestTokenSplitsIntoKeyAndValidator(t *testing.T) {
	t.Parallel()
	sel := format.Selector([]byte("selector-1234567"))
	val := format.Validator([]byte("validator-123456"))
	tok := format.Token(sel, val)
	assert.Len(t, tok, format.TokenLen)
	assert.True(t, format.ValidToken(tok))

	gotSel, gotVal, ok := format.Split(tok)
	require.True(t, ok)
	assert.Equal(t, sel, gotSel)
	assert.Equal(t, val, gotVal)

	key := format.KeyOf(tok)
	assert.Equal(t, sel.Key(), key)
	assert.Len(t, key, format.KeyLen)
	kb := sel.KeyBytes()
	assert.Equal(t, key, string(kb[:]))
	back, ok := format.SelectorOf(key)
	assert.True(t, ok)
	assert.Equal(t, sel, back)
	assert.True(t, strings.HasPrefix(tok, key[:21]), "the key is the token's first half")
}

func TestNotATokenNeverSplits(t *testing.T) {
	t.Parallel()
	good := format.Token(format.Selector{1}, format.Validator{2})
	for name, s := range map[string]string{
		"empty":        "",
		"short":        good[:format.TokenLen-1],
		"long":         good + "A",
		"padding":      good[:format.TokenLen-1] + "=",
		"std base64":   good[:format.TokenLen-1] + "+",
		"space":        good[:format.TokenLen-1] + " ",
		"non-zero pad": good[:format.TokenLen-1] + "B", // 43 characters carry 2 bits too many
	} {
		_, _, ok := format.Split(s)
		assert.False(t, ok, name)
		assert.Empty(t, format.KeyOf(s), name)
		if name != "non-zero pad" {
			assert.False(t, format.ValidToken(s), name)
		}
	}
	for name, key := range map[string]string{"short": "AAAA", "token": good, "not base64": strings.Repeat("*", format.KeyLen)} {
		_, ok := format.SelectorOf(key)
		assert.False(t, ok, name)
	}
}

// A frame keeps the verifier, nonce, credential, record and values, and
// only the token's validator opens it.
func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	val := format.Validator([]byte("validator-123456"))
	cred := format.Credential{1, 2, 3, 4, 5, 6, 7, 8}
	raw := format.Frame(val, []byte("nonce"), cred, []byte("record"), []byte("values"))

	s := format.Parse(raw)
	assert.True(t, s.Found())
	assert.True(t, s.Live())
	assert.False(t, s.Ended)
	assert.Equal(t, "record", string(s.Record))
	assert.Equal(t, "values", string(s.Data))
	assert.Equal(t, format.PadNonce([]byte("nonce")), s.Nonce, "a short nonce is padded with zeros")
	assert.Len(t, s.Nonce, format.NonceLen)
	assert.Equal(t, cred, s.Credential)
	assert.True(t, s.SameNonce([]byte("nonce")))
	assert.False(t, s.SameNonce([]byte("other")))
	assert.True(t, s.Same(raw))
	assert.False(t, s.Same(nil))
	assert.Equal(t, raw, s.Raw())
	assert.NotContains(t, string(raw), "validator", "the frame keeps a hash of the validator, not the validator")

	assert.True(t, format.Opens(raw, val))
	assert.False(t, format.Opens(raw, format.Validator{}))
	tok := format.Token(format.Selector{9}, val)
	assert.True(t, s.Opens(tok))
	assert.False(t, s.Opens(format.Token(format.Selector{9}, format.Validator{})))
	assert.False(t, s.Opens("not a token"))

	record := format.Parse(format.Reframe(raw, []byte("record 2"), nil))
	assert.Equal(t, "record 2", string(record.Record), "Reframe replaces the record")
	assert.Equal(t, "values", string(record.Data), "and keeps the values")
	assert.Equal(t, s.Nonce, record.Nonce)
	assert.Equal(t, cred, record.Credential)
	assert.True(t, format.Opens(record.Raw(), val))
	values := format.Parse(format.Reframe(raw, nil, []byte("values 2")))
	assert.Equal(t, "record", string(values.Record), "or the values, keeping the record")
	assert.Equal(t, "values 2", string(values.Data))
	assert.Equal(t, "record", string(format.Parse(raw).Record), "Reframe leaves raw alone")

	empty := format.Parse(format.Frame(val, nil, format.Credential{}, []byte{}, nil))
	assert.True(t, empty.Live(), "an empty record is a record")
	assert.Empty(t, empty.Data)
}

func TestParseWhatIsNotALiveFrame(t *testing.T) {
	t.Parallel()
	val := format.Validator{1}
	live := format.Frame(val, nil, format.Credential{}, []byte("record"), nil)
	for _, tc := range []struct {
		name               string
		raw                []byte
		found, live, ended bool
		opens              bool // Opens checks the verifier only
	}{
		{name: "nothing", raw: nil},
		{name: "ended", raw: format.Ended, found: true, ended: true},
		{name: "empty", raw: []byte{}, found: true},
		{name: "short", raw: live[:format.RecordAt-1], found: true},
		{name: "record cut", raw: live[:len(live)-1], found: true, opens: true},
		{name: "unknown frame", raw: append([]byte{0x02}, live[1:]...), found: true},
		{name: "ended with more", raw: []byte{format.FrameEnded, 0}, found: true},
	} {
		s := format.Parse(tc.raw)
		assert.Equal(t, tc.found, s.Found(), tc.name)
		assert.Equal(t, tc.live, s.Live(), tc.name)
		assert.Equal(t, tc.ended, s.Ended, tc.name)
		assert.Equal(t, tc.opens, format.Opens(tc.raw, val), tc.name)
		assert.False(t, s.SameNonce(nil), tc.name)
	}
}

// Testformat.SelectorCharsHoldNothingOfTheValidator: the first format.SelectorChars
// characters of a session token are its key's, whatever the validator.
func TestSelectorCharsHoldNothingOfTheValidator(t *testing.T) {
	t.Parallel()
	var sel format.Selector
	copy(sel[:], "selector-0123456")
	var zero, ones format.Validator
	for i := range ones {
		ones[i] = 0xff
	}
	a, b := format.Token(sel, zero), format.Token(sel, ones)
	assert.Equal(t, a[:format.SelectorChars], b[:format.SelectorChars])
	assert.NotEqual(t, a[:format.SelectorChars+1], b[:format.SelectorChars+1], "one more character reads the validator")
	assert.Equal(t, sel.Key()[:format.SelectorChars], a[:format.SelectorChars])
}
