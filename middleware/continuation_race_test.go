package middleware_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/store"
)

// listHook runs hook once, right after the first List that returns while
// armed: the sign-out has chosen what to end, and has not ended it yet.
type listHook struct {
	store.Store
	mu   sync.Mutex
	hook func()
}

func (h *listHook) List(ctx context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	en, next, err := h.Store.List(ctx, user, after, limit)
	h.mu.Lock()
	f := h.hook
	h.hook = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return en, next, err
}

// Device D continues its session twice (a chain) while a revocation of
// it is between its listing and its ending. Every way to end D must leave
// no session of D alive.
func TestContinuationChainRacingEachSignOut(t *testing.T) {
	for _, how := range []string{"revoke-id", "others", "signout-all", "revoke-user", "revoker"} {
		t.Run(how, func(t *testing.T) {
			stores(t, func(t *testing.T, kind string) {
				var h *listHook
				e := newEnv(t, kind, func(c *middleware.Config) { h = &listHook{Store: c.Store}; c.Store = h })
				require.NoError(t, e.auth.Check(context.Background()))
				_, d1 := e.signIn("zed")   // device D
				_, mine := e.signIn("zed") // the caller's device
				dID := idOf(t, e, d1)
				var last string
				h.mu.Lock()
				h.hook = func() {
					cookie := d1
					for range 2 {
						r := e.do(req{path: "/api/me", cookie: cookie, bearer: e.fake.Issue("zed", time.Hour)})
						require.Equal(t, http.StatusOK, r.StatusCode, r.body)
						cookie = r.sessionCookie().Value
					}
					last = cookie
				}
				h.mu.Unlock()
				var n int
				switch how {
				case "revoke-id":
					r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + dID, cookie: mine})
					require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
				case "others":
					r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: mine})
					require.Equal(t, http.StatusOK, r.StatusCode, r.body)
					n = int(r.json(t)["signedOut"].(float64))
					assert.Equal(t, 1, n, "one other device")
				case "signout-all":
					require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: mine}).StatusCode)
				case "revoke-user":
					n, err := e.auth.RevokeUser(context.Background(), "plurality", "zed")
					require.NoError(t, err)
					assert.Equal(t, 2, n)
				case "revoker":
					rv := middleware.NewRevoker(middleware.Config{Store: h, Secret: testSecret, Now: e.clock.Now})
					n, err := rv.RevokeUser(context.Background(), "plurality", "zed")
					require.NoError(t, err)
					assert.Equal(t, 2, n)
				}
				require.NotEmpty(t, last, "the hook ran")
				r := e.do(req{path: "/api/me", cookie: last})
				assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "%s: device D continued twice during its revocation and lives: %s", how, r.body)
				list, err := e.auth.Sessions(context.Background(), "plurality", "zed")
				require.NoError(t, err)
				for _, s := range list {
					assert.NotEqual(t, dID, s.ID, "%s: a session of device D lives", how)
				}
			})
		})
	}
}
