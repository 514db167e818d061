package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// an upstream whose clock runs 90 s behind ours (within no
// leeway at all on iat's past side) issues every fresh token with an iat
// 90 s "ago". With a step-up max age of one minute the freshly
// re-authenticated user is challenged again, forever: the demo page's
// retry fails. Before iat bounded the auth time, the exchange time was used.
func TestStepUpFreshTokenFromSlowUpstreamClock(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		e.fake.Now = func() time.Time { return e.clock.Now().Add(-90 * time.Second) }
		stepUpServer(e, time.Minute)
		_, mine := e.signIn("uma")
		e.clock.Advance(2 * time.Minute)
		requireStepUp(t, e.do(req{path: "/api/sensitive", cookie: mine}), 60)
		fresh := e.fake.Issue("uma", time.Hour) // the user just signed in again
		r := e.do(req{path: "/api/sensitive", cookie: mine, bearer: fresh})
		assert.Equal(t, http.StatusOK, r.StatusCode, "a fresh sign-in fails step-up: %s", r.body)
	})
}

// iat is whole seconds. With the smallest max age the code
// now accepts (1 s), a token issued at X.9 s has iat X; the retry that
// carries it reaches the route 150 ms later: age 1.05 s > 1 s, challenged
// again although the client honoured max_age=1 exactly.
func TestStepUpOneSecondMaxAgeAndIatTruncation(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		stepUpServer(e, time.Second)
		_, mine := e.signIn("uma")
		e.clock.Advance(5 * time.Second)
		requireStepUp(t, e.do(req{path: "/api/sensitive", cookie: mine}), 1)
		frac := time.Duration(e.clock.Now().Nanosecond())
		e.clock.Advance((900*time.Millisecond - frac + time.Second) % time.Second)
		fresh := e.fake.Issue("uma", time.Hour)
		e.clock.Advance(150 * time.Millisecond)
		r := e.do(req{path: "/api/sensitive", cookie: mine, bearer: fresh})
		require.NotZero(t, r.StatusCode)
		assert.Equal(t, http.StatusOK, r.StatusCode, "a token issued 150 ms ago fails max_age=1: %s", r.body)
	})
}
