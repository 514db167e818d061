package redisstore_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// token and rec are the contract's helpers.
var (
	token = backendtest.Token
	rec   = backendtest.Record
)

// newRedis starts a redis-server and returns it with a store on it.
func newRedis(t *testing.T) (*storetest.Server, store.Store) {
	t.Helper()
	srv := storetest.Start(t)
	return srv, redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
}

func TestRedisContract(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(t *testing.T) backend.Backend { _, st := newRedis(t); return st })
}

// store key, never the token; both expire with the session.
func TestRedisKeysAndIndex(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	ctx := context.Background()
	tok := token("raw-session", "token-value")
	exp := time.Now().Add(time.Hour)
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: rec, Data: []byte("d"), Expires: exp, User: "p:alice"}))

	keys, err := redis.Strings(srv.Do("KEYS", "*"))
	require.NoError(t, err)
	sort.Strings(keys)
	assert.Equal(t, []string{"sg:s:" + format.KeyOf(tok), "sg:u:p:alice"}, keys)
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
	score, err := redis.Int64(srv.Do("ZSCORE", "sg:u:p:alice", format.KeyOf(tok)))
	require.NoError(t, err)
	assert.Equal(t, exp.UnixMilli(), score)

	later := exp.Add(time.Hour)
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: token("second", "v"), Record: rec, Data: []byte("d"), Expires: later, User: "p:alice"}))
	ttl, _ := redis.Int64(srv.Do("PTTL", "sg:u:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "the index lives as long as its longest session")
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: token("third", "v"), Record: rec, Data: []byte("d"), Expires: exp, User: "p:alice"}))
	ttl, _ = redis.Int64(srv.Do("PTTL", "sg:u:p:alice"))
	assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "a shorter session never shortens the index")
}

// An ended session's key, and its credential's mark, expire when the
// mark may go: at Until.
func TestRedisEndMarksExpire(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	ctx := context.Background()
	tok := token("ended", "v")
	mark := format.KeyOf(token("mark", "v"))
	require.NoError(t, st.Mint(ctx, backend.NewSession{Token: tok, Record: rec, Credential: format.Credential{1}, Mark: mark,
		Expires: time.Now().Add(time.Hour), User: "p:bob"}))
	require.NoError(t, st.End(ctx, backend.Ending{Key: format.KeyOf(tok), User: "p:bob", Until: time.Now().Add(2 * time.Hour), Mark: mark}))
	for _, k := range []string{"sg:s:" + format.KeyOf(tok), "sg:s:" + mark} {
		ttl, err := redis.Int64(srv.Do("PTTL", k))
		require.NoError(t, err)
		assert.InDelta(t, 2*time.Hour.Milliseconds(), ttl, float64(time.Minute.Milliseconds()), "%s keeps its mark until Until", k)
	}
	n, err := redis.Int(srv.Do("EXISTS", "sg:u:p:bob"))
	require.NoError(t, err)
	assert.Zero(t, n, "the index went with its last session")
}

// Redis down: every operation fails with ErrUnavailable, none hangs or
// seems to succeed.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv, st := newRedis(t)
	srv.Stop()
	for _, op := range operations(token("k", "v")) {
		assert.ErrorIs(t, op.run(context.Background(), st), store.ErrUnavailable, op.name)
	}
	err := st.End(context.Background(), backend.Ending{Key: format.KeyOf(token("k", "v"))})
	assert.ErrorIs(t, err, store.ErrUnavailable, "End of a mark already past")
}

// A command that fails inside End's transaction (here, the replace
// script's DEL, which this Redis user may not run) fails End: EXEC itself
// succeeds, with the error among its replies, and End said nil.
func TestRedisEndFailsWithACommandOfItsTransaction(t *testing.T) {
	t.Parallel()
	srv, admin := newRedis(t)
	_, err := srv.Do("ACL", "SETUSER", "nodel", "on", ">pw", "~*", "&*", "+@all", "-del")
	require.NoError(t, err)
	st := redisstore.New(userPool(t, srv, "nodel", "pw"), redisstore.Options{})
	ctx := context.Background()
	tok := token("replaced", "v")
	require.NoError(t, admin.Mint(ctx, backend.NewSession{Token: tok, Nonce: []byte("nonce"), Record: rec, Expires: time.Now().Add(time.Hour), User: "p:u"}))

	err = st.End(ctx, backend.Ending{Key: format.KeyOf(tok), User: "p:u", Replaced: true, Nonce: []byte("nonce")})
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.EqualError(t, err, "store: unavailable: redis: error reply ERR", "the reply's text is not shown")
	got, err := admin.Lookup(ctx, format.KeyOf(tok))
	require.NoError(t, err)
	assert.True(t, got.Live(), "the session was not ended, and End said so")
}

// A pool that cannot dial fails at construction, not at the first
// request.
func TestNewPanicsWithoutAPool(t *testing.T) {
	t.Parallel()
	for name, pool := range map[string]*redis.Pool{"nil": nil, "no dial": {}} {
		assert.PanicsWithValue(t, "sessiongate/redisstore: New needs a pool that can dial (NewPool makes one)",
			func() { redisstore.New(pool, redisstore.Options{}) }, name)
	}
}

func TestNewPoolRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "http://x:6379", "redis://", "::", "redis://:hunter2@%zz", "redis://:hunter2@/0"} {
		_, err := redisstore.NewPool(u)
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

// A URL that cannot be used is refused with what is wrong with it, never
// with any part of it: a malformed URL may hold its password anywhere.
func TestNewPoolNeverEchoesTheURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis//:hunter2@secret-host:6379/0",
		"redis:/:hunter2@secret-host:6379/0",
		"redis::hunter2@secret-host:6379/0",
		"redis:hunter2@secret-host",
		"//:hunter2@secret-host:6379/0",
		":hunter2@secret-host:6379/0",
		"http://:hunter2@secret-host:6379/0",
		"rediss//user:hunter2@secret-host",
		"redis://:hunter2@secret-host:6379/db0",
		"redis://:hunter2@secret-host:6379/0/1",
		"redis://:hunter2@secret-host:99999/0",
		"redis://:hunter2@secret-host:port/0",
		"redis://:hunter2@[secret-host/0",
		"redis://:hunter2@secret-host%zz/0",
		"redis://:hunter2@:6379/0",
		"redis://:hunter2@secret-host/0?master_name=secret-host",
		"redis://:hunter2@secret-host/0#secret-host",
		" redis://:hunter2@secret-host/0",
		"redis://:hunter2\n@secret-host/0",
		"",
	} {
		_, err := redisstore.NewPool(u)
		require.Error(t, err, "%q", u)
		assert.True(t, strings.HasPrefix(err.Error(), "store: the Redis URL"), err.Error())
		for _, part := range []string{"hunter2", "secret-host"} {
			assert.NotContains(t, err.Error(), part, "%q", u)
		}
	}
	for _, u := range []string{"redis://127.0.0.1:6379/0", "rediss://user:pw@host:6380/3", "redis://host", "redis://:pw@host/"} {
		_, err := redisstore.NewPool(u)
		assert.NoError(t, err, u)
	}
}
