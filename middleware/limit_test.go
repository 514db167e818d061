package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
)

// publicID returns the public id of the session that token opens.
func (e *env) publicID(t *testing.T, token string) string {
	t.Helper()
	r := e.do(req{path: "/auth/session", cookie: token})
	require.Equal(t, http.StatusOK, r.StatusCode, r.body)
	return r.json(t)["session"].(map[string]any)["id"].(string)
}

// listedIDs returns the public ids of user's live sessions, sorted.
func (e *env) listedIDs(t *testing.T, user string) []string {
	t.Helper()
	list, err := e.auth.Sessions(t.Context(), "plurality", user)
	require.NoError(t, err)
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return sortedStrings(ids)
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestMaxSessionsPerUserEndsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		var (
			mu    sync.Mutex
			ended []middleware.Event
		)
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.MaxSessionsPerUser = 2
			c.Observer = middleware.ObserverFunc(func(_ context.Context, ev middleware.Event) {
				if ev.Kind == middleware.EventEnded {
					mu.Lock()
					ended = append(ended, ev)
					mu.Unlock()
				}
			})
		})
		tokA, a := e.signInAs("uma", chromeMac)
		idA := e.publicID(t, a) // at the sign-in's instant: no activity recorded
		e.clock.Advance(2 * time.Minute)
		tokB, b := e.signInAs("uma", firefoxWin)
		idB := e.publicID(t, b)
		_, stranger := e.signIn("stranger")
		e.clock.Advance(2 * time.Minute)
		// A is used after B's sign-in (past KeepAliveInterval): B is now
		// the least recently used.
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: a}).StatusCode)
		e.clock.Advance(2 * time.Minute)

		_, c := e.signInAs("uma", safariIPhone)
		idC := e.publicID(t, c)
		assert.Equal(t, sortedStrings([]string{idA, idC}), e.listedIDs(t, "uma"), "B is absent from the listing")
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: b}).StatusCode, "B's session ended")
		calls := e.fake.Calls()
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: tokB}).StatusCode, "B's frontend token cannot sign in again")
		assert.Equal(t, calls, e.fake.Calls(), "refused without asking the upstream: it carries a sign-out mark")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: a}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: tokA}).StatusCode)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: stranger}).StatusCode, "another user's sessions do not count")
		logs := e.logs.String()
		assert.Contains(t, logs, `why="session limit" session=`+idB, "the log says which session ended, and why")
		assert.NotContains(t, logs, "session="+idA+" user=uma\n", "A was not ended")
		mu.Lock()
		if assert.Len(t, ended, 1, "one ended event") {
			assert.Equal(t, middleware.ReasonSessionLimit, ended[0].Reason)
			assert.Equal(t, idB, ended[0].SessionID, "the event says which session ended")
			assert.Equal(t, "uma", ended[0].UserID)
		}
		mu.Unlock()

		// C signing in again (a new token, its own cookie) continues its
		// session: nothing else ends.
		r := e.do(req{method: http.MethodPost, path: "/auth/session", cookie: c, bearer: e.fake.Issue("uma", time.Hour)})
		require.Equal(t, http.StatusCreated, r.StatusCode, r.body)
		assert.Equal(t, sortedStrings([]string{idA, idC}), e.listedIDs(t, "uma"), "a continuation is not one more device")
		assert.Equal(t, 1, strings.Count(e.logs.String(), `why="session limit"`))

		if kind == "redis" {
			n, err := redis.Int(e.redis.Do("ZCARD", "sg:u:"+format.UserIndex("plurality", "uma")))
			require.NoError(t, err)
			assert.Equal(t, 2, n, "the user's index holds two sessions")
			v, err := redis.Bytes(e.redis.Do("GET", "sg:s:"+format.KeyOf(b)))
			require.NoError(t, err)
			assert.True(t, format.Parse(v).Ended, "B's key keeps the mark of an ended session")
		}
	})
}

// Concurrent sign-ins of one user never leave more than the limit live:
// the ending is in the mint's atomic step.
func TestMaxSessionsPerUserUnderConcurrentSignIns(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.MaxSessionsPerUser = 3 })
		const n = 12
		done := make(chan int, n)
		for range n {
			go func() {
				r, err := e.try(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("uma", time.Hour)})
				if err != nil {
					done <- 0
					return
				}
				done <- r.StatusCode
			}()
		}
		created := 0
		for range n {
			// A sign-in whose new session a concurrent one has already
			// ended for the limit is told so: 401, signed out.
			switch status := <-done; status {
			case http.StatusCreated:
				created++
			default:
				assert.Equal(t, http.StatusUnauthorized, status)
			}
		}
		t.Logf("%s: %d of %d concurrent sign-ins answered 201, the others' sessions were already ended", kind, created, n)
		assert.GreaterOrEqual(t, created, 3)
		assert.Len(t, e.listedIDs(t, "uma"), 3)
		assert.Equal(t, n-3, strings.Count(e.logs.String(), `why="session limit"`), "every other sign-in was ended for the limit")
	})
}
