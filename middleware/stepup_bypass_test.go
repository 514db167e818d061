package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// Step-up cannot be passed again with a token it refused. A bearer-only
// client whose token was already exchanged (the server knows when) is
// refused by step-up; it waits for its session to
// idle out and sends the very same token: the re-mint records "now" as
// the authentication time and the sensitive route runs. No new
// authentication happened in between.
func TestStepUpNotBypassedByIdleOutAndSameToken(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) { c.IdleTimeout = 5 * time.Minute })
		stepUpServer(e, 10*time.Minute)
		token := e.fake.Issue("uma", time.Hour)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/sensitive", bearer: token}).StatusCode)
		for range 3 { // keep it active for 12 minutes
			e.clock.Advance(4 * time.Minute)
			require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: token}).StatusCode)
		}
		requireStepUp(t, e.do(req{path: "/api/sensitive", bearer: token}), 600)

		e.clock.Advance(6 * time.Minute) // idle out: the user did nothing
		r := e.do(req{path: "/api/sensitive", bearer: token})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode,
			"the same token, refused 6 minutes ago as stale, passes step-up now: %d %s", r.StatusCode, r.body)
	})
}

// The same without any idle timeout: a client holding a stale
// session's frontend token (and its cookie) gets that session *replaced*
// by a sign-in of another account of its own (no mark), then sends the
// stale token alone: a new session with authTime = now.
func TestStepUpNotBypassedByReplacingTheSession(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		stepUpServer(e, 10*time.Minute)
		token := e.fake.Issue("uma", time.Hour)
		r := e.do(req{path: "/api/me", bearer: token})
		require.Equal(t, http.StatusOK, r.StatusCode)
		cookie := r.sessionCookie().Value
		e.clock.Advance(11 * time.Minute)
		requireStepUp(t, e.do(req{path: "/api/sensitive", cookie: cookie}), 600)
		requireStepUp(t, e.do(req{path: "/api/sensitive", bearer: token}), 600)

		// Replace uma's session with one of an account the client owns.
		r = e.do(req{path: "/api/me", cookie: cookie, bearer: e.fake.Issue("mallory", time.Hour)})
		require.Equal(t, http.StatusOK, r.StatusCode)

		r = e.do(req{path: "/api/sensitive", bearer: token})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode,
			"uma's stale token passes step-up after its session was replaced: %d %s", r.StatusCode, r.body)
	})
}
