package middleware_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend/backendtest"
)

// The counts #5 promises, asserted (the times are the benchmarks' job).

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func TestRedisMemoryPerSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	// A typical Plurality sign-in: UUID user id, the fake's claims (id,
	// uniqueSessionId as a UUID, iat, exp) and its answer {"valid": true},
	// a desktop Chrome.
	token := e.fake.Issue("8f14e45f-ceea-467f-a0d6-5f8c1c1e0a11", time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: token, hdr: map[string]string{"User-Agent": chromeUA}})
	require.Equal(t, http.StatusCreated, r.StatusCode, r.body)

	keys, err := redis.Strings(e.redis.Do("KEYS", "*"))
	require.NoError(t, err)
	require.Len(t, keys, 2, "the session and its user's index: %q", keys)
	total := 0
	for _, k := range keys {
		n, err := redis.Int(e.redis.Do("MEMORY", "USAGE", k))
		require.NoError(t, err)
		t.Logf("%q: %d bytes", k, n)
		total += n
	}
	assert.LessOrEqual(t, total, 400, "Redis memory of one session, everything it writes counted")
}

func TestExchangeWritesInOneRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	e.signIn("erin") // the first mint on a Redis also loads the script
	before := e.commandCalls()
	e.signIn("erin")
	after := e.commandCalls()
	assert.Equal(t, before["evalsha"]+1, after["evalsha"], "session and user index written by one script call")
	assert.Equal(t, before["eval"], after["eval"])
	assert.Equal(t, before["exec"], after["exec"], "and nothing else")
	assert.EqualValues(t, 2, e.fake.Calls(), "one upstream call per exchange")
}

func TestProcessesSharingRedisMintOneSessionPerToken(t *testing.T) {
	t.Parallel()
	a := newEnv(t, "redis")
	b := newEnvSharing(t, "redis", a)
	token := a.fake.Issue("fay", time.Hour)

	const perProcess = 20
	sessions := make([]string, 2*perProcess)
	// tokens are the session tokens handed out: to the requests that
	// shared a mint (a bearer-only client is not sent its token again).
	tokens := make([]string, 2*perProcess)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := a
			if i%2 == 1 {
				e = b
			}
			r, err := e.try(req{path: "/auth/session", bearer: token})
			if err == nil && r.StatusCode == http.StatusOK {
				sessions[i], tokens[i] = sessionIDIn(r), r.Header.Get("X-Session-Token")
			}
		}()
	}
	wg.Wait()
	var handedOut string
	for i, s := range sessions {
		require.NotEmpty(t, s, "request %d failed\n%s\n%s", i, a.logs, b.logs)
		assert.Equal(t, sessions[0], s, "one session for the token across processes")
		if tokens[i] != "" {
			if handedOut == "" {
				handedOut = tokens[i]
			}
			assert.Equal(t, handedOut, tokens[i], "one session token handed out")
		}
	}
	require.NotEmpty(t, handedOut, "the mint hands its session token out")
	assert.LessOrEqual(t, a.fake.Calls(), int64(2), "at most one upstream call per process")
	entries, err := backendtest.ListAll(context.Background(), a.store, "plurality:fay")
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// Signed out in one process, refused in the other.
	require.Equal(t, http.StatusNoContent, b.do(req{method: http.MethodDelete, path: "/auth/session", bearer: token}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, a.do(req{path: "/api/me", bearer: token}).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, a.do(req{path: "/api/me", header: handedOut}).StatusCode)
}
