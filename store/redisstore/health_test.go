package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

var (
	fingerprintA = []byte("fingerprint-A-0123456789abcdef01")
	fingerprintB = []byte("fingerprint-B-0123456789abcdef01")
)

// Check tells whether the Redis can do what sign-in and sign-out need;
// each server here answers PING, so a ping alone called them all healthy.
func TestRedisCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		start      func(t *testing.T) string // the server's URL
		opts       redisstore.Options
		misconfig  bool   // the error is ErrMisconfigured too
		says       string // in the error; "" for healthy
		opsFailToo bool   // every operation fails as well, saying why
	}{
		{name: "primary", start: plain},
		{name: "replica", start: replica, misconfig: true, says: "read-only replica"},
		{name: "cluster node", start: started("--cluster-enabled", "yes"), misconfig: true, says: "Redis Cluster node: add ?cluster=true", opsFailToo: true},
		{name: "sentinel", start: sentinel, misconfig: true, says: "Sentinel", opsFailToo: true},
		{name: "full under noeviction", start: full, says: "Redis is full"},
		{name: "evicting", start: started("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"), misconfig: true,
			says: "maxmemory-policy is allkeys-lru, but it must be noeviction", opsFailToo: true},
		{name: "evicting, allowed", start: started("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"),
			opts: redisstore.Options{InsecureAllowEviction: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, err := redisstore.NewPool(tc.start(t))
			require.NoError(t, err)
			t.Cleanup(func() { pool.Close() })
			st := redisstore.New(pool, tc.opts)
			err = st.Check(context.Background(), fingerprintA, true)
			if tc.says == "" {
				assert.NoError(t, err)
				assert.NoError(t, lookup(st))
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, store.ErrUnavailable)
			assert.Equal(t, tc.misconfig, errors.Is(err, store.ErrMisconfigured), "ErrMisconfigured: %v", err)
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), string(fingerprintA))
			if tc.opsFailToo {
				_, err := st.Lookup(context.Background(), "k")
				assert.ErrorIs(t, err, store.ErrMisconfigured)
				assert.Contains(t, err.Error(), tc.says, "every operation says why")
			}
		})
	}
}

// The fingerprint of the secret: the first claim records it; another is a
// mismatch; one that is only compared is never recorded.
func TestRedisFingerprint(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
	ctx := context.Background()

	require.NoError(t, st.Check(ctx, fingerprintA, false), "nothing to compare with")
	n, err := redis.Int(srv.Do("EXISTS", "sg:fingerprint"))
	require.NoError(t, err)
	assert.Zero(t, n, "a fingerprint only compared is not recorded")

	require.NoError(t, st.Check(ctx, fingerprintA, true))
	stored, err := redis.Bytes(srv.Do("GET", "sg:fingerprint"))
	require.NoError(t, err)
	assert.Equal(t, fingerprintA, stored)
	ttl, err := redis.Int(srv.Do("TTL", "sg:fingerprint"))
	require.NoError(t, err)
	assert.Equal(t, -1, ttl, "kept until deleted")

	assert.NoError(t, st.Check(ctx, fingerprintA, true), "the same secret")
	assert.NoError(t, st.Check(ctx, fingerprintA, false))
	for _, claim := range []bool{true, false} {
		err := st.Check(ctx, fingerprintB, claim)
		assert.ErrorIs(t, err, store.ErrSecretMismatch, "claim=%v", claim)
		assert.NotContains(t, err.Error(), "fingerprint-")
	}
	stored, _ = redis.Bytes(srv.Do("GET", "sg:fingerprint"))
	assert.Equal(t, fingerprintA, stored, "a mismatch changes nothing")
}

// Every policy that may evict is refused at each new connection, so every
// operation fails and says the policy must be noeviction; the opt-in lets
// them run.
func TestRedisRefusesEvictingPolicies(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t, "--maxmemory", "64mb")
	tok := token("ops", "v")
	for _, policy := range []string{"volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl"} {
		_, err := srv.Do("CONFIG", "SET", "maxmemory-policy", policy)
		require.NoError(t, err)
		st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
		for _, op := range operations(tok) {
			err := op.run(context.Background(), st)
			assert.ErrorIs(t, err, store.ErrMisconfigured, "%s under %s", op.name, policy)
			assert.ErrorIs(t, err, store.ErrUnavailable, "%s under %s", op.name, policy)
			assert.ErrorContains(t, err, "maxmemory-policy is "+policy+", but it must be noeviction")
		}
		allowed := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{InsecureAllowEviction: true})
		mintOps(t, allowed)
		for _, op := range operations(tok) {
			assert.NoError(t, op.run(context.Background(), allowed), "%s under %s, allowed", op.name, policy)
		}
	}
}

// A Redis user that may not run INFO: the policy is read with CONFIG GET;
// when neither is allowed, the store refuses rather than guess.
func TestRedisPolicyWithoutINFO(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	for user, rules := range map[string][]any{"noinfo": {"-info"}, "blind": {"-info", "-config"}} {
		_, err := srv.Do("ACL", append([]any{"SETUSER", user, "on", ">pw", "~*", "&*", "+@all"}, rules...)...)
		require.NoError(t, err)
	}
	as := func(user string, opts redisstore.Options) store.Store {
		return redisstore.New(userPool(t, srv, user, "pw"), opts)
	}
	ctx := context.Background()

	st := as("noinfo", redisstore.Options{})
	assert.NoError(t, lookup(st), "noeviction read with CONFIG GET")
	assert.NoError(t, st.Check(ctx, fingerprintA, true), "and Check still writes")

	err := lookup(as("blind", redisstore.Options{}))
	assert.ErrorIs(t, err, store.ErrMisconfigured)
	assert.ErrorContains(t, err, "maxmemory-policy cannot be read")
	assert.NoError(t, lookup(as("blind", redisstore.Options{InsecureAllowEviction: true})))

	_, err = srv.Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	require.NoError(t, err)
	err = lookup(as("noinfo", redisstore.Options{}))
	assert.ErrorContains(t, err, "maxmemory-policy is allkeys-lru, but it must be noeviction")
}

// A full Redis under noeviction refuses writes: a sign-out (End) fails
// with ErrUnavailable, it never seems to succeed.
func TestRedisFullRefusesWrites(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
	tok := mintOps(t, st)
	srv.Fill()
	err := st.End(context.Background(), backend.Ending{Key: format.KeyOf(tok), User: "p:ops", Until: time.Now().Add(time.Hour)})
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.EqualError(t, err, "store: unavailable: redis: OOM: Redis is full (maxmemory reached under noeviction)")
	got, err := st.Lookup(context.Background(), format.KeyOf(tok))
	require.NoError(t, err, "reads still work")
	assert.True(t, got.Live(), "the session was not ended")
}

func plain(t *testing.T) string { return storetest.Start(t).URL }

func started(extra ...string) func(t *testing.T) string {
	return func(t *testing.T) string { return storetest.Start(t, extra...).URL }
}

// replica starts a primary and a replica of it, and returns the replica.
func replica(t *testing.T) string {
	primary := storetest.Start(t)
	host, port, err := net.SplitHostPort(primary.Addr)
	require.NoError(t, err)
	return storetest.Start(t, "--replicaof", host, port).URL
}

// full starts a Redis with little memory under noeviction, full.
func full(t *testing.T) string {
	srv := storetest.Start(t)
	srv.Fill()
	return srv.URL
}

// sentinel starts a Redis Sentinel (redis-server with a config file and
// --sentinel), which storetest cannot: the config file must come first.
func sentinel(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found: install it (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n", port, dir)), 0o600))
	cmd := exec.Command(bin, conf, "--sentinel")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "redis://" + addr
	for i := 0; ; i++ {
		c, err := redis.DialURL(url, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return url
			}
		}
		require.Less(t, i, 500, "the sentinel did not answer")
		time.Sleep(20 * time.Millisecond)
	}
}

// A policy changed at runtime, on a Redis the store already uses, is
// refused within RecheckInterval: pooled connections are checked again.
func TestRedisPolicyChangedAtRuntime(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{RecheckInterval: time.Millisecond})
	ctx := context.Background()
	require.NoError(t, lookup(st), "noeviction")
	_, err := srv.Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return errors.Is(lookup(st), store.ErrMisconfigured) }, time.Minute, 5*time.Millisecond,
		"the pooled connection is checked again")
	_, err = backendtest.ListAll(ctx, st, "p:x")
	assert.ErrorContains(t, err, "must be noeviction", "and every operation fails, saying why")
	_, err = srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lookup(st) == nil }, time.Minute, 5*time.Millisecond, "fixed: served again")
}

// Check writes with a script, as sign-in and sign-out do: a Redis user
// that may not run scripts, and a Redis that refuses writes for want of
// replicas, fail it (with or without a fingerprint to record).
func TestCheckWritesAsSignInDoes(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	_, err := srv.Do("ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "&*", "+@all", "-eval", "-evalsha", "-script")
	require.NoError(t, err)
	pool := userPool(t, srv, "noscripts", "pw")
	ctx := context.Background()
	for _, claim := range []bool{true, false} {
		err = redisstore.New(pool, redisstore.Options{}).Check(ctx, fingerprintA, claim)
		assert.ErrorIs(t, err, store.ErrMisconfigured, "claim %v", claim)
		assert.ErrorContains(t, err, "may not run a script")
	}
	for user, rules := range map[string][]any{
		"nozadd":      {"~*", "&*", "+@all", "-zadd"},
		"nopexpire":   {"~*", "&*", "+@all", "-pexpireat"},
		"noindexkeys": {"~sg:s:*", "~sg:health", "~sg:fingerprint", "&*", "+@all"},
		"readsession": {"%R~sg:s:*", "~sg:u:*", "~sg:health", "~sg:fingerprint", "&*", "+@all"},
	} {
		_, err := srv.Do("ACL", append([]any{"SETUSER", user, "on", ">pw"}, rules...)...)
		require.NoError(t, err)
		st := redisstore.New(userPool(t, srv, user, "pw"), redisstore.Options{})
		assert.ErrorIs(t, st.Check(ctx, fingerprintA, true), store.ErrMisconfigured, "user %s cannot sign anyone in", user)
	}

	st := redisstore.New(redisPool(t, srv, nil, nil), redisstore.Options{})
	require.NoError(t, st.Check(ctx, fingerprintA, true))
	_, err = srv.Do("CONFIG", "SET", "min-replicas-to-write", "1")
	require.NoError(t, err)
	for _, claim := range []bool{true, false} {
		err = st.Check(ctx, fingerprintA, claim)
		assert.ErrorIs(t, err, store.ErrUnavailable, "claim %v", claim)
		assert.ErrorContains(t, err, "refuses writes now (NOREPLICAS)")
	}
}
