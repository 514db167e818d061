package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

// /healthz answered 200 while every sign-in got 503: it only pinged. It
// now answers 200 only when the store can do what sign-in and sign-out
// need, and says why not.
func TestHealthzTellsWhy(t *testing.T) {
	t.Parallel()
	const secret = "healthz-secret-0123456789abcdef"
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) *storetest.Server
		why   string // in the reason; "" for healthy
		query string // after REDIS_URL
	}{
		{"primary", func(t *testing.T) *storetest.Server { return storetest.Start(t) }, "", ""},
		{"read-only replica", func(t *testing.T) *storetest.Server {
			host, port, err := net.SplitHostPort(storetest.Start(t).Addr)
			require.NoError(t, err)
			return storetest.Start(t, "--replicaof", host, port)
		}, "read-only replica", ""},
		{"cluster node", func(t *testing.T) *storetest.Server {
			return storetest.Start(t, "--cluster-enabled", "yes")
		}, "Redis Cluster node", ""},
		{"cluster URL at a plain Redis", func(t *testing.T) *storetest.Server { return storetest.Start(t) }, "not in cluster mode", "?cluster=true"},
		{"full under noeviction", func(t *testing.T) *storetest.Server {
			// A maxmemory below what an empty Redis uses: full from the
			// start, every write refused.
			return storetest.Start(t, "--maxmemory", "1", "--maxmemory-policy", "noeviction")
		}, "Redis is full", ""},
		{"evicting", func(t *testing.T) *storetest.Server {
			return storetest.Start(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
		}, "must be noeviction", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestApp(t, map[string]string{"SESSION_STORE": "redis", "REDIS_URL": tc.redis(t).URL + tc.query, "SESSION_SECRET": secret})
			status, body := healthzOf(t, srv.URL)
			if tc.why == "" {
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, map[string]string{"status": "ok"}, body)
				return
			}
			assert.Equal(t, http.StatusServiceUnavailable, status)
			assert.Equal(t, "unavailable", body["status"])
			assert.Contains(t, body["reason"], tc.why)
			assert.NotContains(t, body["reason"], secret)
		})
	}
}

// Processes with different SESSION_SECRETs on one Redis each minted their
// own session for one token, and a sign-out in one did not stop the
// other. The second one now refuses to start, and says why.
func TestStartRefusesAnotherSecret(t *testing.T) {
	t.Parallel()
	redis := storetest.Start(t)
	env := func(secret string) map[string]string {
		return map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redis.URL, "SESSION_SECRET": secret}
	}
	start := func(env map[string]string) error {
		cfg, err := configFrom(func(k string) string { return env[k] })
		require.NoError(t, err)
		a, err := newApp(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			a.Close()
		}
		return err
	}
	require.NoError(t, start(env("the-first-secret-0123456789")))
	require.NoError(t, start(env("the-first-secret-0123456789")), "the same secret again")
	for name, e := range map[string]map[string]string{
		"another secret": env("another-secret-0123456789"),
		"a random one":   env(""),
	} {
		err := start(e)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "SESSION_SECRET is not the secret of the other processes on this Redis", name)
		assert.NotContains(t, err.Error(), "0123456789", name)
	}

	srv := newTestApp(t, env("the-first-secret-0123456789"))
	status, _ := healthzOf(t, srv.URL)
	assert.Equal(t, http.StatusOK, status)
}

// A random SESSION_SECRET (unset) is never recorded: an app restarted
// without one starts again, as docker compose's default does.
func TestRandomSecretRestarts(t *testing.T) {
	t.Parallel()
	redis := storetest.Start(t)
	for range 2 {
		srv := newTestApp(t, map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redis.URL})
		status, _ := healthzOf(t, srv.URL)
		assert.Equal(t, http.StatusOK, status)
	}
}

func healthzOf(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var body map[string]string
	require.NoError(t, json.Unmarshal(b, &body), string(b))
	return res.StatusCode, body
}
