package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
)

// noIat is a provider whose tokens carry no iat (an opaque token through
// provider/introspect, which zeroes it; a JWKS token without the claim).
func noIat(p provider.Provider) provider.Provider {
	return editIdentity{p, func(id *provider.Identity) { id.IssuedAt = time.Time{} }}
}

// A token without iat, refused by step-up, is refused again after its
// session idled out: the key still holds the record of its first
// exchange, whose authentication time it keeps.
func TestStepUpNoIatNotBypassedByIdleOut(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, func(c *middleware.Config) {
			c.IdleTimeout = 5 * time.Minute
			c.Provider = noIat(c.Provider)
		})
		stepUpServer(e, 10*time.Minute)
		token := e.fake.Issue("uma", time.Hour)
		require.Equal(t, http.StatusOK, e.do(req{path: "/api/sensitive", bearer: token}).StatusCode)
		for range 3 {
			e.clock.Advance(4 * time.Minute)
			require.Equal(t, http.StatusOK, e.do(req{path: "/api/me", bearer: token}).StatusCode)
		}
		requireStepUp(t, e.do(req{path: "/api/sensitive", bearer: token}), 600)
		e.clock.Advance(6 * time.Minute)
		r := e.do(req{path: "/api/sensitive", bearer: token})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "no-iat token passes step-up after idle-out: %d %s", r.StatusCode, r.body)
	})
}
