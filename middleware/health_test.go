package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/storetest"
)

// Two processes on one Redis with different secrets each minted their own
// session for one token, and a sign-out in one did not stop the other,
// silently. Check tells them apart by the secret's fingerprint.
func TestCheckFindsAnotherSecretOnTheStore(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	withSecret := func(s string) func(*middleware.Config) {
		return func(c *middleware.Config) { c.Secret = provider.Secret(s) }
	}
	first := newEnvSharing(t, "redis", &env{redis: srv})
	other := newEnvSharing(t, "redis", first, withSecret("another-secret-0123456789"))
	random := newEnvSharing(t, "redis", first, withSecret(""))
	ctx := context.Background()

	require.NoError(t, random.auth.Check(ctx), "a random secret, nothing recorded to compare with")
	n, err := redis.Int(srv.Do("EXISTS", "sg:fingerprint"))
	require.NoError(t, err)
	assert.Zero(t, n, "a random secret is never recorded")

	require.NoError(t, first.auth.Check(ctx), "the first configured secret is recorded")
	stored, err := redis.String(srv.Do("GET", "sg:fingerprint"))
	require.NoError(t, err)
	assert.NotContains(t, stored, testSecret)
	assert.NoError(t, first.auth.Check(ctx))
	assert.NoError(t, newEnvSharing(t, "redis", first).auth.Check(ctx), "another process, the same secret")

	for name, e := range map[string]*env{"another secret": other, "a random secret": random} {
		err := e.auth.Check(ctx)
		assert.ErrorIs(t, err, store.ErrSecretMismatch, name)
		assert.NotContains(t, err.Error(), "secret-0123456789", name)
	}
	assert.NoError(t, newEnv(t, "memory").auth.Check(ctx), "a memory store is one process's")
}

// Redis with maxmemory-policy allkeys-lru forgot, once full, the marks of
// signed-out tokens, and a signed-out token minted again. Such a Redis is
// refused: sign-in answers 503 before any upstream call, and the log and
// Check say the policy must be noeviction.
func TestEvictingRedisIsRefused(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"allkeys-lru", "volatile-lru"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			srv := storetest.Start(t, "--maxmemory", "4mb", "--maxmemory-policy", policy)
			e := newEnvSharing(t, "redis", &env{redis: srv})
			frontend := e.fake.Issue("evicted", time.Hour)
			r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
			assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
			assert.Equal(t, "session_store_unavailable", r.json(t)["error"])
			assert.Zero(t, e.fake.Calls(), "refused before the upstream call")
			keys, err := redis.Strings(srv.Do("KEYS", "sg:*"))
			require.NoError(t, err)
			assert.Empty(t, keys, "nothing written")
			want := "maxmemory-policy is " + policy + ", but it must be noeviction"
			assert.Contains(t, e.logs.String(), want)
			err = e.auth.Check(context.Background())
			assert.ErrorIs(t, err, store.ErrMisconfigured)
			assert.ErrorContains(t, err, want)
		})
	}
}

// With noeviction, a full Redis refuses writes: a sign-out answers 503
// (never 204 for a session that lives on), and Check says Redis is full.
func TestFullRedisRefusesSignOut(t *testing.T) {
	t.Parallel()
	srv := storetest.Start(t)
	e := newEnvSharing(t, "redis", &env{redis: srv})
	_, session := e.signIn("full")
	require.NoError(t, e.auth.Check(context.Background()))
	srv.Fill()

	r := e.do(req{method: http.MethodDelete, path: "/auth/session", header: session})
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	assert.Equal(t, "session_store_unavailable", r.json(t)["error"])
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
	err := e.auth.Check(context.Background())
	assert.ErrorIs(t, err, store.ErrUnavailable)
	assert.ErrorContains(t, err, "Redis is full")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: session}).StatusCode, "the session still lives, and reads work")

	_, err = srv.Do("CONFIG", "SET", "maxmemory", "0")
	require.NoError(t, err)
	assert.NoError(t, e.auth.Check(context.Background()))
	assert.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", header: session}).StatusCode)
}

// Check at start-up, and as the readiness probe: 503 with the reason
// when the store cannot do what sign-in and sign-out need.
func ExampleAuth_Check() {
	auth := middleware.New(middleware.Config{
		Store:    store.NewMemory(), // redisstore.New(pool, redisstore.Options{}) in production
		Provider: plurality.New(plurality.Config{ClientID: "id", ClientSecret: "secret"}),
		Secret:   "a shared secret of at least 16 bytes",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := auth.Check(ctx); errors.Is(err, store.ErrSecretMismatch) {
		log.Fatal("SESSION_SECRET differs from the other processes' on this Redis")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := auth.Check(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable) // says why; holds no secret
			return
		}
		io.WriteString(w, "ok")
	})
	fmt.Println(auth.Check(ctx))
	// Output: <nil>
}
