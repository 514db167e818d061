package store_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// stores returns each Store implementation, fresh, for a contract test.
func stores(t *testing.T) map[string]store.Store {
	t.Helper()
	_, st := newRedis(t)
	return map[string]store.Store{"memory": store.NewMemory(), "redis": st}
}

// newRedis starts a redis-server and returns it with a store on it.
func newRedis(t *testing.T) (*storetest.Server, *store.Redis) {
	t.Helper()
	srv := storetest.Start(t)
	pool, err := store.NewRedisPool(srv.URL)
	require.NoError(t, err)
	t.Cleanup(func() { pool.Close() })
	return srv, store.NewRedis(pool)
}

// token returns a session token whose selector is sel's and whose
// validator is val's.
func token(sel, val string) string {
	return store.Token([16]byte([]byte(fmt.Sprintf("%-16.16s", sel))), [16]byte([]byte(fmt.Sprintf("%-16.16s", val))))
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			user := "plurality:" + t.Name()
			exp := time.Now().Add(time.Hour)
			a, b := token("a"+name, "va"), token("b"+name, "vb")
			forged := token("a"+name, "forged")
			nonce := []byte("12345678")

			_, found, err := st.Find(a)
			require.NoError(t, err)
			assert.False(t, found, "not found is not an error")
			got, err := st.Lookup(ctx, store.Key(a))
			require.NoError(t, err)
			assert.False(t, got.Found())

			assert.ErrorIs(t, st.Commit(a, []byte("ghost"), exp), store.ErrNotLive)
			_, found, _ = st.Find(a)
			assert.False(t, found, "Commit never creates a session")

			require.NoError(t, st.Mint(ctx, store.Mint{Token: a, Record: rec, Nonce: nonce, Data: []byte("A"), Expires: exp, User: user}))
			require.NoError(t, st.Mint(ctx, store.Mint{Token: b, Record: rec, Data: []byte("B"), Expires: exp, User: user}))
			data, found, err := st.Find(a)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "A", string(data))
			_, found, _ = st.Find(forged)
			assert.False(t, found, "the selector alone opens nothing")
			got, err = st.Lookup(ctx, store.Key(a))
			require.NoError(t, err)
			assert.True(t, got.Live())
			assert.Equal(t, "A", string(got.Data))
			assert.Equal(t, nonce, got.Nonce)

			assert.ErrorIs(t, st.Mint(ctx, store.Mint{Token: forged, Record: rec, Data: []byte("X"), Expires: exp, User: user}), store.ErrConflict,
				"a mint that expects nothing never replaces a session")
			assert.ErrorIs(t, st.Commit(forged, []byte("X"), exp), store.ErrNotLive)
			assert.ErrorIs(t, st.Delete(forged), store.ErrUnsupported)
			assert.ErrorIs(t, st.Delete(a), store.ErrUnsupported, "scs's Destroy cannot end a session without its mark")
			data, _, _ = st.Find(a)
			assert.Equal(t, "A", string(data), "a wrong validator can neither write nor delete")

			require.NoError(t, st.Commit(a, []byte("A2"), exp))
			data, _, _ = st.Find(a)
			assert.Equal(t, "A2", string(data), "Commit updates a live session")
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.Equal(t, nonce, got.Nonce, "and keeps its nonce")
			assert.Equal(t, rec, got.Record, "and its record: the values are apart from it")
			require.NoError(t, st.Touch(ctx, a, []byte("record 2")))
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.Equal(t, "record 2", string(got.Record), "Touch replaces the record")
			assert.Equal(t, "A2", string(got.Data), "and keeps the values")
			require.NoError(t, st.Touch(ctx, forged, []byte("forged")), "Touch on a session the token does not open does nothing")
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.Equal(t, "record 2", string(got.Record))

			entries, err := st.Sessions(ctx, user)
			require.NoError(t, err)
			assert.Equal(t, []string{"A2", "B"}, datas(entries))

			require.NoError(t, st.End(ctx, store.End{Key: store.Key(a), User: user, Until: exp}))
			_, found, _ = st.Find(a)
			assert.False(t, found, "ended")
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.True(t, got.Ended, "the key keeps the mark of an ended session")
			entries, _ = st.Sessions(ctx, user)
			assert.Equal(t, []string{"B"}, datas(entries))

			assert.ErrorIs(t, st.Commit(a, []byte("resurrected"), exp), store.ErrNotLive)
			_, found, _ = st.Find(a)
			assert.False(t, found, "an in-flight Commit cannot bring an ended session back")
			assert.ErrorIs(t, st.Mint(ctx, store.Mint{Token: a, Record: rec, Data: []byte("again"), Expires: exp, User: user}), store.ErrConflict,
				"nor can a mint that did not see the end")

			again := token("a"+name, "again")
			require.NoError(t, st.Mint(ctx, store.Mint{Token: again, Record: rec, Data: []byte("A3"), Expires: exp, User: user, Replace: got}))
			data, found, _ = st.Find(again)
			assert.True(t, found, "a mint that saw what is there replaces it")
			assert.Equal(t, "A3", string(data))
			_, found, _ = st.Find(a)
			assert.False(t, found, "the old validator opens nothing")
			assert.ErrorIs(t, st.Mint(ctx, store.Mint{Token: again, Record: rec, Data: []byte("A4"), Expires: exp, User: user, Replace: got}), store.ErrConflict,
				"what it saw is gone")

			require.NoError(t, st.End(ctx, store.End{Key: store.Key(b), Until: exp, Replaced: true}))
			got, _ = st.Lookup(ctx, store.Key(b))
			assert.False(t, got.Found(), "a replaced session leaves no mark")
			entries, _ = st.Sessions(ctx, user)
			assert.Equal(t, []string{"A3"}, datas(entries), "entries whose session is gone are not listed")

			require.NoError(t, st.End(ctx, store.End{Key: store.Key(again), User: user, Until: time.Now().Add(-time.Second)}))
			got, _ = st.Lookup(ctx, store.Key(again))
			assert.False(t, got.Found(), "an end mark whose time is past is deleted")
			assert.Error(t, st.Mint(ctx, store.Mint{Token: "not a token", Record: rec, Expires: exp, User: user}))
			assert.NoError(t, st.Ping(ctx))
		})
	}
}

// rec is a record for the store tests: the store keeps it as it is.
var rec = []byte("record")

func TestCredentialOneSessionAndMark(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			user := "p:" + t.Name()
			exp := time.Now().Add(time.Hour)
			cred := [store.CredentialLen]byte{1, 2, 3}
			mark := store.Key(token("mark"+name, "x"))
			a, b, other := token("a"+name, "v"), token("b"+name, "v"), token("o"+name, "v")
			require.NoError(t, st.Mint(ctx, store.Mint{Token: a, Record: rec, Credential: cred, Mark: mark, Expires: exp, User: user}))
			require.NoError(t, st.Mint(ctx, store.Mint{Token: other, Record: rec, Credential: [store.CredentialLen]byte{9}, Expires: exp, User: user}))
			got, _ := st.Lookup(ctx, store.Key(a))
			assert.Equal(t, cred, got.Credential)

			require.NoError(t, st.Mint(ctx, store.Mint{Token: b, Record: rec, Credential: cred, Mark: mark, Expires: exp, User: user}))
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.False(t, got.Found(), "another spelling of one credential replaces its session: one session per credential")
			got, _ = st.Lookup(ctx, store.Key(other))
			assert.True(t, got.Live(), "another credential's session stays")
			entries, _ := st.Sessions(ctx, user)
			assert.Len(t, entries, 2)

			require.NoError(t, st.End(ctx, store.End{Key: store.Key(b), User: user, Until: exp, Mark: mark}))
			got, _ = st.Lookup(ctx, mark)
			assert.True(t, got.Ended, "the credential's mark is left")
			assert.ErrorIs(t, st.Mint(ctx, store.Mint{Token: a, Record: rec, Credential: cred, Mark: mark, Expires: exp, User: user}), store.ErrSignedOut,
				"no spelling of a signed-out credential mints again")
			got, _ = st.Lookup(ctx, store.Key(a))
			assert.False(t, got.Found(), "and nothing was written")
		})
	}
}

func TestPrefetchedAnswersWithoutARead(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	ctx := context.Background()
	a := token("prefetch", "v")
	require.NoError(t, st.Mint(ctx, store.Mint{Token: a, Record: rec, Data: []byte("A"), Expires: time.Now().Add(time.Hour), User: "p:u"}))
	got, err := st.Lookup(ctx, store.Key(a))
	require.NoError(t, err)
	_, err = srv.Do("CONFIG", "RESETSTAT")
	require.NoError(t, err)
	data, found, err := st.FindCtx(store.Prefetched(ctx, store.Key(a), got), a)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "A", string(data))
	_, found, _ = st.FindCtx(store.Prefetched(ctx, store.Key(a), got), token("prefetch", "forged"))
	assert.False(t, found, "a prefetched session still needs its validator")
	info, err := redis.String(srv.Do("INFO", "commandstats"))
	require.NoError(t, err)
	assert.NotContains(t, info, "cmdstat_get", "no read")
}

func TestStoreExpiry(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			user := "u:" + t.Name()
			// Long enough that the mint below is surely before it; the
			// test then waits for the expiry, however long that takes.
			short := time.Now().Add(2 * time.Second)
			tok := token("short"+name, "v")
			require.NoError(t, st.Mint(ctx, store.Mint{Token: tok, Record: rec, Data: []byte("x"), Expires: short, User: user}))
			require.NoError(t, st.Mint(ctx, store.Mint{Token: token("past"+name, "v"), Record: rec, Data: []byte("x"), Expires: time.Now().Add(-time.Second), User: user}))
			entries, _ := st.Sessions(ctx, user)
			assert.Len(t, entries, 1, "an already expired session is never written")
			time.Sleep(time.Until(short))
			assert.Eventually(t, func() bool { _, found, _ := st.Find(tok); return !found }, time.Minute, 10*time.Millisecond)
			got, _ := st.Lookup(ctx, store.Key(tok))
			assert.False(t, got.Found())
			entries, _ = st.Sessions(ctx, user)
			assert.Empty(t, entries, "expired sessions leave the index by themselves")
		})
	}
}

func TestRedisKeysAndIndex(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	ctx := context.Background()
	tok := token("raw-session", "token-value")
	exp := time.Now().Add(time.Hour)
	require.NoError(t, st.Mint(ctx, store.Mint{Token: tok, Record: rec, Data: []byte("d"), Expires: exp, User: "p:alice"}))

	keys, err := redis.Strings(srv.Do("KEYS", "*"))
	require.NoError(t, err)
	sort.Strings(keys)
	assert.Equal(t, []string{"sg:s:" + store.Key(tok), "sg:u:p:alice"}, keys)
	for _, k := range keys {
		assert.NotContains(t, k, tok, "no raw token in any key")
		v, _ := redis.Bytes(srv.Do("DUMP", k))
		assert.NotContains(t, string(v), "token-value", "no validator in any value")
	}
	for _, k := range keys {
		ttl, err := redis.Int64(srv.Do("PTTL", k))
		require.NoError(t, err)
		assert.InDelta(t, time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "%s expires with the session", k)
	}
	score, err := redis.Int64(srv.Do("ZSCORE", "sg:u:p:alice", store.Key(tok)))
	require.NoError(t, err)
	assert.Equal(t, exp.UnixMilli(), score)

	later := exp.Add(time.Hour)
	require.NoError(t, st.Mint(ctx, store.Mint{Token: token("second", "v"), Record: rec, Data: []byte("d"), Expires: later, User: "p:alice"}))
	ttl, _ := redis.Int64(srv.Do("PTTL", "sg:u:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "the index lives as long as its longest session")
	require.NoError(t, st.Mint(ctx, store.Mint{Token: token("third", "v"), Record: rec, Data: []byte("d"), Expires: exp, User: "p:alice"}))
	ttl, _ = redis.Int64(srv.Do("PTTL", "sg:u:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "a shorter session never shortens the index")
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	srv.Stop()
	ctx := context.Background()
	k := token("k", "v")
	_, _, err := st.Find(k)
	assert.ErrorIs(t, err, store.ErrUnavailable)
	_, err = st.Lookup(ctx, store.Key(k))
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, st.Mint(ctx, store.Mint{Token: k, Record: rec, User: "u", Expires: time.Now().Add(time.Hour)}), store.ErrUnavailable)
	assert.ErrorIs(t, st.End(ctx, store.End{Key: store.Key(k)}), store.ErrUnavailable)
	assert.ErrorIs(t, st.Commit(k, nil, time.Now().Add(time.Hour)), store.ErrUnavailable)
	_, err = st.Sessions(ctx, "u")
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, st.Ping(ctx), store.ErrUnavailable)
}

func TestNewRedisPoolRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "http://x:6379", "redis://", "::", "redis://:hunter2@%zz"} {
		_, err := store.NewRedisPool(u)
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "hunter2")
	}
	_, err := store.NewRedisPool("redis://:hunter2@/0")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestNewManager(t *testing.T) {
	t.Parallel()
	sm := store.NewManager(store.NewMemory())
	assert.False(t, sm.HashTokenInStore, "the store splits tokens itself")
	assert.IsType(t, store.Codec{}, sm.Codec)
	assert.True(t, sm.Cookie.Secure)
	assert.True(t, sm.Cookie.HttpOnly)
	assert.Equal(t, "__Host-session", sm.Cookie.Name, "a sibling subdomain cannot set a __Host- cookie")
	assert.Equal(t, "/", sm.Cookie.Path)
	assert.Empty(t, sm.Cookie.Domain)
	assert.Zero(t, sm.IdleTimeout)
}

func datas(entries []store.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, string(e.Data))
	}
	sort.Strings(out)
	return out
}
