// Package backendtest is the contract every backend.Backend keeps, as
// tests: the memory store and the Redis store run the same ones, so that
// the engine cannot tell them apart. A store's own behaviour (its keys in
// Redis, its faults) is tested beside it.
package backendtest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// Record is a record for store tests: a store keeps it as it is.
var Record = []byte("record")

// Token returns a session token whose selector is sel and whose validator
// is val, each cut or padded with spaces to 16 bytes.
func Token(sel, val string) string {
	return format.Token(format.Selector([]byte(fmt.Sprintf("%-16.16s", sel))), format.Validator([]byte(fmt.Sprintf("%-16.16s", val))))
}

// Run runs the contract on stores from newStore, which returns a fresh,
// empty store for each test (the tests run in parallel).
func Run(t *testing.T, newStore func(t *testing.T) backend.Backend) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, st backend.Backend)
	}{
		{"Lifecycle", testLifecycle},
		{"CredentialOneSessionAndMark", testCredentialOneSessionAndMark},
		{"Continues", testContinues},
		{"ReplacedNeedsItsNonce", testReplacedNeedsItsNonce},
		{"BadMint", testBadMint},
		{"Limit", testLimit},
		{"Expiry", testExpiry},
		{"Paging", testPaging},
		{"PagingUnderChurn", testPagingUnderChurn},
		{"PagingTies", testPagingTies},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

// testLifecycle walks one user's sessions through every method: mint,
// find, commit, touch, list, end, mint again over the mark.
func testLifecycle(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "plurality:" + t.Name()
	exp := time.Now().Add(time.Hour)
	a, b := Token("a", "va"), Token("b", "vb")
	forged := Token("a", "forged")
	nonce := []byte("12345678")

	_, found, err := st.Find(a)
	require.NoError(t, err)
	assert.False(t, found, "not found is not an error")
	got, err := st.Lookup(ctx, format.KeyOf(a))
	require.NoError(t, err)
	assert.False(t, got.Found())

	assert.ErrorIs(t, st.Commit(a, []byte("ghost"), exp), backend.ErrNotLive)
	_, found, _ = st.Find(a)
	assert.False(t, found, "Commit never creates a session")

	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: a, Record: Record, Nonce: nonce, Data: []byte("A"), Expires: exp, User: user}))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: b, Record: Record, Data: []byte("B"), Expires: exp, User: user}))
	data, found, err := st.Find(a)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "A", string(data))
	_, found, _ = st.Find(forged)
	assert.False(t, found, "the selector alone opens nothing")
	_, found, err = st.Find("not a token")
	require.NoError(t, err)
	assert.False(t, found)
	got, err = st.Lookup(ctx, format.KeyOf(a))
	require.NoError(t, err)
	assert.True(t, got.Live())
	assert.Equal(t, "A", string(got.Data))
	assert.Equal(t, nonce, got.Nonce)
	assert.True(t, got.Opens(a))
	assert.False(t, got.Opens(forged))

	assert.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: forged, Record: Record, Data: []byte("X"), Expires: exp, User: user}), backend.ErrConflict,
		"a mint that expects nothing never replaces a session")
	assert.ErrorIs(t, st.Commit(forged, []byte("X"), exp), backend.ErrNotLive)
	assert.ErrorIs(t, st.Delete(forged), backend.ErrUnsupported)
	assert.ErrorIs(t, st.Delete(a), backend.ErrUnsupported, "scs's Destroy cannot end a session without its mark")
	data, _, _ = st.Find(a)
	assert.Equal(t, "A", string(data), "a wrong validator can neither write nor delete")

	require.NoError(t, st.Commit(a, []byte("A2"), exp))
	data, _, _ = st.Find(a)
	assert.Equal(t, "A2", string(data), "Commit updates a live session")
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.Equal(t, nonce, got.Nonce, "and keeps its nonce")
	assert.Equal(t, Record, got.Record, "and its record: the values are apart from it")
	require.NoError(t, st.Touch(ctx, a, []byte("record 2")))
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.Equal(t, "record 2", string(got.Record), "Touch replaces the record")
	assert.Equal(t, "A2", string(got.Data), "and keeps the values")
	assert.Equal(t, nonce, got.Nonce, "and the nonce")
	require.NoError(t, st.Touch(ctx, forged, []byte("forged")), "Touch on a session the token does not open does nothing")
	require.NoError(t, st.Touch(ctx, Token("nobody", "v"), []byte("x")), "nor on no session at all")
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.Equal(t, "record 2", string(got.Record))

	entries, err := listAll(ctx, st, user)
	require.NoError(t, err)
	assert.Equal(t, []string{"A2", "B"}, datas(entries))
	assert.ElementsMatch(t, []string{format.KeyOf(a), format.KeyOf(b)}, keys(entries))
	entries, err = listAll(ctx, st, "plurality:nobody")
	require.NoError(t, err)
	assert.Empty(t, entries, "a user without sessions is not an error")

	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(a), User: user, Until: exp}))
	_, found, _ = st.Find(a)
	assert.False(t, found, "ended")
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.True(t, got.Ended, "the key keeps the mark of an ended session")
	assert.True(t, got.Found())
	assert.False(t, got.Live())
	entries, _ = listAll(ctx, st, user)
	assert.Equal(t, []string{"B"}, datas(entries))

	assert.ErrorIs(t, st.Commit(a, []byte("resurrected"), exp), backend.ErrNotLive)
	_, found, _ = st.Find(a)
	assert.False(t, found, "an in-flight Commit cannot bring an ended session back")
	require.NoError(t, st.Touch(ctx, a, []byte("resurrected")))
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.True(t, got.Ended, "nor can an in-flight Touch")
	assert.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: a, Record: Record, Data: []byte("again"), Expires: exp, User: user}), backend.ErrConflict,
		"nor can a mint that did not see the end")

	again := Token("a", "again")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: again, Record: Record, Data: []byte("A3"), Expires: exp, User: user, Replace: got}))
	data, found, _ = st.Find(again)
	assert.True(t, found, "a mint that saw what is there replaces it")
	assert.Equal(t, "A3", string(data))
	_, found, _ = st.Find(a)
	assert.False(t, found, "the old validator opens nothing")
	assert.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: again, Record: Record, Data: []byte("A4"), Expires: exp, User: user, Replace: got}), backend.ErrConflict,
		"what it saw is gone")

	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(b), Until: exp, Replaced: true}))
	got, _ = st.Lookup(ctx, format.KeyOf(b))
	assert.False(t, got.Found(), "a replaced session leaves no mark")
	entries, _ = listAll(ctx, st, user)
	assert.Equal(t, []string{"A3"}, datas(entries), "entries whose session is gone are not listed")

	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(again), User: user, Until: time.Now().Add(-time.Second)}))
	got, _ = st.Lookup(ctx, format.KeyOf(again))
	assert.False(t, got.Found(), "an end mark whose time is past is deleted")
	entries, _ = listAll(ctx, st, user)
	assert.Empty(t, entries)
	require.NoError(t, st.End(ctx), "nothing to end")
	assert.NoError(t, st.Check(ctx, []byte("fingerprint-0123456789abcdef0123"), true), "a fresh store passes its check")
}

// testCredentialOneSessionAndMark: one live session per credential of a
// user, and a signed-out credential's mark stops every spelling of it.
func testCredentialOneSessionAndMark(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	exp := time.Now().Add(time.Hour)
	cred := format.Credential{1, 2, 3}
	mark := format.KeyOf(Token("mark", "x"))
	a, b, other := Token("a", "v"), Token("b", "v"), Token("o", "v")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: a, Record: Record, Credential: cred, Mark: mark, Expires: exp, User: user}))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: other, Record: Record, Credential: format.Credential{9}, Expires: exp, User: user}))
	got, _ := st.Lookup(ctx, format.KeyOf(a))
	assert.Equal(t, cred, got.Credential)

	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: b, Record: Record, Credential: cred, Mark: mark, Expires: exp, User: user}))
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.False(t, got.Found(), "another spelling of one credential replaces its session: one session per credential")
	got, _ = st.Lookup(ctx, format.KeyOf(other))
	assert.True(t, got.Live(), "another credential's session stays")
	entries, _ := listAll(ctx, st, user)
	assert.Len(t, entries, 2)
	assert.ElementsMatch(t, []string{format.KeyOf(b), format.KeyOf(other)}, keys(entries))

	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(b), User: user, Until: exp, Mark: mark}))
	got, _ = st.Lookup(ctx, mark)
	assert.True(t, got.Ended, "the credential's mark is left")
	assert.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: a, Record: Record, Credential: cred, Mark: mark, Expires: exp, User: user}), backend.ErrSignedOut,
		"no spelling of a signed-out credential mints again")
	got, _ = st.Lookup(ctx, format.KeyOf(a))
	assert.False(t, got.Found(), "and nothing was written")
	got, _ = st.Lookup(ctx, format.KeyOf(other))
	assert.True(t, got.Live(), "nor was anything ended")
}

// testContinues: a mint that continues a session removes it, key and
// index entry, in the same step; one whose session ended meanwhile
// writes nothing.
func testContinues(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	exp := time.Now().Add(time.Hour)
	old, next := Token("old", "v"), Token("next", "v")
	oldNonce := []byte("old-nonc")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: old, Nonce: oldNonce, Record: Record, Data: []byte("O"), Expires: exp, User: user}))

	for name, c := range map[string]*backend.Continued{
		"another nonce":   {Key: format.KeyOf(old), Nonce: []byte("other-no")},
		"no such session": {Key: format.KeyOf(Token("gone", "v")), Nonce: oldNonce},
		"the key to mint": {Key: format.KeyOf(next), Nonce: oldNonce},
	} {
		err := st.Mint(ctx, backend.NewSession{Token: next, Record: Record, Data: []byte("N"), Expires: exp, User: user, Continues: c})
		assert.ErrorIs(t, err, backend.ErrNotContinued, name)
		got, _ := st.Lookup(ctx, format.KeyOf(next))
		assert.False(t, got.Found(), "%s: nothing was written", name)
		got, _ = st.Lookup(ctx, format.KeyOf(old))
		assert.True(t, got.Live(), "%s: nothing was ended", name)
	}

	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: next, Record: Record, Data: []byte("N"), Expires: exp, User: user,
		Continues: &backend.Continued{Key: format.KeyOf(old), Nonce: oldNonce}}))
	got, _ := st.Lookup(ctx, format.KeyOf(old))
	assert.False(t, got.Found(), "the continued session is gone, without a mark")
	entries, _ := listAll(ctx, st, user)
	assert.Equal(t, []string{format.KeyOf(next)}, keys(entries), "and has left the index")

	again := Token("again", "v")
	err := st.Mint(ctx, backend.NewSession{Token: again, Record: Record, Expires: exp, User: user,
		Continues: &backend.Continued{Key: format.KeyOf(old), Nonce: oldNonce}})
	assert.ErrorIs(t, err, backend.ErrNotContinued, "a session is continued once")

	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(next), User: user, Until: exp}))
	err = st.Mint(ctx, backend.NewSession{Token: again, Record: Record, Expires: exp, User: user,
		Continues: &backend.Continued{Key: format.KeyOf(next)}})
	assert.ErrorIs(t, err, backend.ErrNotContinued, "a signed-out session is not continued")
	got, _ = st.Lookup(ctx, format.KeyOf(next))
	assert.True(t, got.Ended, "and keeps its mark")
}

// testReplacedNeedsItsNonce: a Replaced end removes only the session
// minted with its nonce; a sign-out's mark, or a session minted anew
// meanwhile, stays.
func testReplacedNeedsItsNonce(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	exp := time.Now().Add(time.Hour)
	tok := Token("replaced", "v")
	key := format.KeyOf(tok)
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte("nonce-1"), Record: Record, Expires: exp, User: user}))

	require.NoError(t, st.End(ctx, backend.Ending{Key: key, User: user, Until: exp, Replaced: true, Nonce: []byte("nonce-2")}))
	got, _ := st.Lookup(ctx, key)
	assert.True(t, got.Live(), "a session minted anew is left alone")
	entries, _ := listAll(ctx, st, user)
	assert.Len(t, entries, 1, "and stays listed")

	require.NoError(t, st.End(ctx, backend.Ending{Key: key, User: user, Until: exp, Replaced: true, Nonce: []byte("nonce-1")}))
	got, _ = st.Lookup(ctx, key)
	assert.False(t, got.Found(), "the session minted with the nonce is removed, without a mark")
	entries, _ = listAll(ctx, st, user)
	assert.Empty(t, entries)

	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte("nonce-3"), Record: Record, Expires: exp, User: user}))
	require.NoError(t, st.End(ctx, backend.Ending{Key: key, User: user, Until: exp}))
	require.NoError(t, st.End(ctx, backend.Ending{Key: key, User: user, Until: exp, Replaced: true, Nonce: []byte("nonce-3")}))
	got, _ = st.Lookup(ctx, key)
	assert.True(t, got.Ended, "a sign-out's mark is never replaced away")
}

// testBadMint: a NewSession that is not Valid is refused, and writes
// nothing.
func testBadMint(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	tok := Token("bad", "v")
	for name, s := range map[string]backend.NewSession{
		"not a token":     {Token: "not a token", Record: Record, Expires: exp, User: "p:u"},
		"no user":         {Token: tok, Record: Record, Expires: exp},
		"no record":       {Token: tok, Expires: exp, User: "p:u"},
		"too long record": {Token: tok, Record: make([]byte, format.MaxRecordLen+1), Expires: exp, User: "p:u"},
	} {
		assert.False(t, s.Valid(), name)
		assert.ErrorIs(t, st.Mint(ctx, s), backend.ErrBadMint, name)
	}
	got, err := st.Lookup(ctx, format.KeyOf(tok))
	require.NoError(t, err)
	assert.False(t, got.Found(), "nothing was written")

	longest := backend.NewSession{Token: tok, Record: make([]byte, format.MaxRecordLen), Data: []byte("d"), Expires: exp, User: "p:u"}
	require.NoError(t, st.Mint(ctx, longest), "a record of MaxRecordLen bytes is kept")
	got, _ = st.Lookup(ctx, format.KeyOf(tok))
	assert.Len(t, got.Record, format.MaxRecordLen)
	assert.Equal(t, "d", string(got.Data))
}

// index; one already expired is never written.
func testExpiry(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "u:" + t.Name()
	// Long enough that the mint below is surely before it; the test then
	// waits for the expiry, however long that takes.
	short := time.Now().Add(2 * time.Second)
	tok := Token("short", "v")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: Record, Data: []byte("x"), Expires: short, User: user}))
	require.ErrorIs(t, st.Mint(ctx, backend.NewSession{Token: Token("past", "v"), Record: Record, Data: []byte("x"), Expires: time.Now().Add(-time.Second), User: user}), backend.ErrExpired)
	entries, _ := listAll(ctx, st, user)
	assert.Len(t, entries, 1, "an already expired session is never written")
	got, _ := st.Lookup(ctx, format.KeyOf(Token("past", "v")))
	assert.False(t, got.Found())
	time.Sleep(time.Until(short))
	assert.Eventually(t, func() bool { _, found, _ := st.Find(tok); return !found }, time.Minute, 10*time.Millisecond)
	got, _ = st.Lookup(ctx, format.KeyOf(tok))
	assert.False(t, got.Found())
	entries, _ = listAll(ctx, st, user)
	assert.Empty(t, entries, "expired sessions leave the index by themselves")
	assert.ErrorIs(t, st.Commit(tok, []byte("late"), time.Now().Add(time.Hour)), backend.ErrNotLive, "an expired session is not committed back")
}

// seenRecord returns a record whose last seen time is seen.
func seenRecord(seen time.Time) []byte {
	return format.EncodeRecord(&format.Session{Created: seen.Add(-time.Hour), LastSeen: seen, Expires: seen.Add(time.Hour),
		Identity: provider.Identity{UserID: "u", Provider: "p"}})
}

// testLimit: a mint with a Limit ends, in the same step, the user's least
// recently used live sessions beyond it (an unreadable record first), and
// reports them; what it replaces or continues does not count; a mint
// that fails ends nothing.
func testLimit(t *testing.T, st backend.Backend) {
	ctx := context.Background()
	user := "p:" + t.Name()
	exp := time.Now().Add(time.Hour)
	base := time.Now().Add(-time.Hour)
	mint := func(name string, seen time.Duration, s backend.NewSession) error {
		s.Token, s.Record, s.Data, s.Expires, s.User = Token(name, "v"), seenRecord(base.Add(seen)), []byte(name), exp, user
		if s.Nonce == nil {
			s.Nonce = []byte(name)
		}
		return st.Mint(ctx, s)
	}
	key := func(name string) string { return format.KeyOf(Token(name, "v")) }
	// Last seen: b, then junk (never: first), then a, then c.
	require.NoError(t, mint("a", 20*time.Minute, backend.NewSession{}))
	require.NoError(t, mint("b", 10*time.Minute, backend.NewSession{}))
	require.NoError(t, mint("c", 30*time.Minute, backend.NewSession{}))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: Token("junk", "v"), Record: Record, Expires: exp, User: user}))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: Token("other", "v"), Record: seenRecord(base), Expires: exp, User: user + "-other"}))

	// A mint that fails (a conflict) ends nothing.
	limit := &backend.Limit{Max: 1}
	assert.ErrorIs(t, mint("a", 0, backend.NewSession{Limit: limit}), backend.ErrConflict)
	assert.Empty(t, limit.Ended)
	entries, _ := listAll(ctx, st, user)
	assert.Len(t, entries, 4, "a failed mint ends nothing")

	limit = &backend.Limit{Max: 3}
	require.NoError(t, mint("d", 40*time.Minute, backend.NewSession{Limit: limit}))
	require.Len(t, limit.Ended, 2, "4 live + 1 new, at most 3: two end")
	assert.Equal(t, []string{key("junk"), key("b")}, []string{limit.Ended[0].Key, limit.Ended[1].Key}, "least recently used first, an unreadable record first of all")
	assert.True(t, limit.Ended[1].Stored.Live(), "reported as it was")
	assert.Equal(t, "b", string(limit.Ended[1].Stored.Data))
	for _, name := range []string{"junk", "b"} {
		got, err := st.Lookup(ctx, key(name))
		require.NoError(t, err)
		assert.True(t, got.Ended, "%s keeps the mark of an ended session", name)
	}
	entries, _ = listAll(ctx, st, user)
	assert.Equal(t, keys([]backend.Entry{{Key: key("a")}, {Key: key("c")}, {Key: key("d")}}), keys(entries))
	others, _ := listAll(ctx, st, user+"-other")
	assert.Len(t, others, 1, "another user's sessions do not count")

	// Continuing a session (the same device) does not count as one more.
	limit = &backend.Limit{Max: 3}
	require.NoError(t, mint("d2", 50*time.Minute, backend.NewSession{Limit: limit, Continues: &backend.Continued{Key: key("d"), Nonce: []byte("d")}}))
	assert.Empty(t, limit.Ended, "a continuation replaces its session")
	// Nor does another spelling of a credential, which replaces its own.
	cred := format.Credential{7}
	require.NoError(t, mint("e", 60*time.Minute, backend.NewSession{Credential: cred, Limit: &backend.Limit{Max: 4}}))
	limit = &backend.Limit{Max: 4}
	require.NoError(t, mint("e2", 70*time.Minute, backend.NewSession{Credential: cred, Limit: limit}))
	assert.Empty(t, limit.Ended, "the same credential replaces its session")

	// Without a limit nothing more ends; a limit of 1 leaves the new one alone.
	require.NoError(t, mint("f", 80*time.Minute, backend.NewSession{}))
	entries, _ = listAll(ctx, st, user)
	assert.Len(t, entries, 5)
	limit = &backend.Limit{Max: 1}
	require.NoError(t, mint("g", 90*time.Minute, backend.NewSession{Limit: limit}))
	var ended []string
	for _, e := range limit.Ended {
		ended = append(ended, e.Key)
	}
	assert.Equal(t, []string{key("a"), key("c"), key("d2"), key("e2"), key("f")}, ended)
	entries, _ = listAll(ctx, st, user)
	assert.Equal(t, []string{key("g")}, keys(entries))
}

// datas returns the scs values of entries, sorted.
func datas(entries []backend.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, string(e.Stored.Data))
	}
	sort.Strings(out)
	return out
}

// keys returns the keys of entries, sorted.
func keys(entries []backend.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Key)
	}
	sort.Strings(out)
	return out
}
