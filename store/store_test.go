package store_test

import (
	"context"
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

func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			user := "plurality:" + t.Name()
			exp := time.Now().Add(time.Hour)
			a, b := store.Key("token-a"+name), store.Key("token-b"+name)

			_, found, err := st.Find(a)
			require.NoError(t, err)
			assert.False(t, found, "not found is not an error")

			require.NoError(t, st.Commit(a, []byte("ghost"), exp))
			_, found, _ = st.Find(a)
			assert.False(t, found, "Commit never creates a session")

			require.NoError(t, st.Mint(ctx, store.Mint{Key: a, Data: []byte("A"), Expires: exp, User: user, LinkKey: "link-a" + name, Link: []byte("to-a")}))
			require.NoError(t, st.Mint(ctx, store.Mint{Key: b, Data: []byte("B"), Expires: exp, User: user}))
			data, found, err := st.Find(a)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "A", string(data))
			link, found, err := st.Link(ctx, "link-a"+name)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "to-a", string(link))

			require.NoError(t, st.Commit(a, []byte("A2"), exp))
			data, _, _ = st.Find(a)
			assert.Equal(t, "A2", string(data), "Commit updates a live session")

			entries, err := st.Sessions(ctx, user)
			require.NoError(t, err)
			assert.Equal(t, []string{"A2", "B"}, datas(entries))

			require.NoError(t, st.End(ctx, store.End{Key: a, User: user, LinkKey: "link-a" + name, Tombstone: []byte("dead"), TombstoneExpires: exp}))
			_, found, _ = st.Find(a)
			assert.False(t, found, "ended")
			link, found, _ = st.Link(ctx, "link-a"+name)
			assert.True(t, found)
			assert.Equal(t, "dead", string(link), "the link is a tombstone now")
			entries, _ = st.Sessions(ctx, user)
			assert.Equal(t, []string{"B"}, datas(entries))

			require.NoError(t, st.Commit(a, []byte("resurrected"), exp))
			_, found, _ = st.Find(a)
			assert.False(t, found, "an in-flight Commit cannot bring an ended session back")

			require.NoError(t, st.Delete(b))
			entries, _ = st.Sessions(ctx, user)
			assert.Empty(t, entries, "entries whose session is gone are not listed")

			require.NoError(t, st.End(ctx, store.End{Key: b, User: user, LinkKey: "link-a" + name, TombstoneExpires: time.Now().Add(-time.Second)}))
			_, found, _ = st.Link(ctx, "link-a"+name)
			assert.False(t, found, "a tombstone whose time is past is deleted")
			assert.NoError(t, st.Ping(ctx))
		})
	}
}

func TestStoreExpiry(t *testing.T) {
	t.Parallel()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			user := "u:" + t.Name()
			short := time.Now().Add(150 * time.Millisecond)
			key := store.Key("short" + name)
			require.NoError(t, st.Mint(ctx, store.Mint{Key: key, Data: []byte("x"), Expires: short, User: user, LinkKey: "l" + name, Link: []byte("v")}))
			require.NoError(t, st.Mint(ctx, store.Mint{Key: store.Key("past" + name), Data: []byte("x"), Expires: time.Now().Add(-time.Second), User: user}))
			entries, _ := st.Sessions(ctx, user)
			assert.Len(t, entries, 1, "an already expired session is never written")
			time.Sleep(250 * time.Millisecond)
			_, found, _ := st.Find(key)
			assert.False(t, found)
			_, found, _ = st.Link(ctx, "l"+name)
			assert.False(t, found)
			entries, _ = st.Sessions(ctx, user)
			assert.Empty(t, entries, "expired sessions leave the index by themselves")
		})
	}
}

func TestRedisKeysAndIndex(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	ctx := context.Background()
	token := "raw-session-token-value"
	exp := time.Now().Add(time.Hour)
	require.NoError(t, st.Mint(ctx, store.Mint{Key: store.Key(token), Data: []byte("d"), Expires: exp, User: "p:alice", LinkKey: "k1", Link: []byte("v")}))

	keys, err := redis.Strings(srv.Do("KEYS", "*"))
	require.NoError(t, err)
	sort.Strings(keys)
	assert.Equal(t, []string{"scs:session:" + store.Key(token), "sessiongate:link:k1", "sessiongate:user:p:alice"}, keys)
	for _, k := range keys {
		assert.NotContains(t, k, token, "no raw token in any key")
	}
	for _, k := range keys {
		ttl, err := redis.Int64(srv.Do("PTTL", k))
		require.NoError(t, err)
		assert.InDelta(t, time.Hour.Milliseconds(), ttl, 5000, "%s expires with the session", k)
	}
	score, err := redis.Int64(srv.Do("ZSCORE", "sessiongate:user:p:alice", store.Key(token)))
	require.NoError(t, err)
	assert.Equal(t, exp.UnixMilli(), score)

	later := exp.Add(time.Hour)
	require.NoError(t, st.Mint(ctx, store.Mint{Key: store.Key("second"), Data: []byte("d"), Expires: later, User: "p:alice"}))
	ttl, _ := redis.Int64(srv.Do("PTTL", "sessiongate:user:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, 5000, "the index lives as long as its longest session")
	require.NoError(t, st.Mint(ctx, store.Mint{Key: store.Key("third"), Data: []byte("d"), Expires: exp, User: "p:alice"}))
	ttl, _ = redis.Int64(srv.Do("PTTL", "sessiongate:user:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, 5000, "a shorter session never shortens the index")
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	srv.Stop()
	ctx := context.Background()
	start := time.Now()
	_, _, err := st.Find("k")
	assert.ErrorIs(t, err, store.ErrUnavailable)
	_, _, err = st.Link(ctx, "k")
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, st.Mint(ctx, store.Mint{Key: "k", Expires: time.Now().Add(time.Hour)}), store.ErrUnavailable)
	assert.ErrorIs(t, st.End(ctx, store.End{Key: "k"}), store.ErrUnavailable)
	assert.ErrorIs(t, st.Commit("k", nil, time.Now().Add(time.Hour)), store.ErrUnavailable)
	_, err = st.Sessions(ctx, "u")
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorIs(t, st.Ping(ctx), store.ErrUnavailable)
	assert.Less(t, time.Since(start), 3*time.Second)
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
	assert.True(t, sm.HashTokenInStore)
	assert.True(t, sm.Cookie.Secure)
	assert.True(t, sm.Cookie.HttpOnly)
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
