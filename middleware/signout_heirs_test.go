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

// listSteps runs the next of its hooks right after each List returns
// (while armed): the first after the sign-out's listing of what to end,
// the second after SignOut's listing of the heirs, before it ends them.
type listSteps struct {
	store.Store
	mu    sync.Mutex
	hooks []func()
}

func (h *listSteps) arm(hooks ...func()) {
	h.mu.Lock()
	h.hooks = hooks
	h.mu.Unlock()
}

func (h *listSteps) List(ctx context.Context, user string, after backend.Position, limit int) ([]backend.Entry, backend.Position, error) {
	en, next, err := h.Store.List(ctx, user, after, limit)
	h.mu.Lock()
	var f func()
	if len(h.hooks) > 0 {
		f, h.hooks = h.hooks[0], h.hooks[1:]
	}
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return en, next, err
}

// Device D continues its session once between the first listing and the
// first end (it becomes an heir), and once more between the heirs'
// listing and their end (same public id, a fresh credential). The
// sign-out looks for heirs again until none is left: it never returns
// while a session of its devices lives.
func TestAnHeirContinuedAgainIsSignedOutToo(t *testing.T) {
	for _, how := range []string{"revoke-id", "others", "signout-all", "revoke-user"} {
		t.Run(how, func(t *testing.T) {
			stores(t, func(t *testing.T, kind string) {
				var h *listSteps
				e := newEnv(t, kind, func(c *middleware.Config) { h = &listSteps{Store: c.Store}; c.Store = h })
				_, d1 := e.signIn("zed")   // device D
				_, mine := e.signIn("zed") // the caller's device
				dID := idOf(t, e, d1)
				cookie := d1
				cont := func() {
					r := e.do(req{path: "/api/me", cookie: cookie, bearer: e.fake.Issue("zed", time.Hour)})
					require.Equal(t, http.StatusOK, r.StatusCode, r.body)
					cookie = r.sessionCookie().Value
				}
				h.arm(cont, cont)
				switch how {
				case "revoke-id":
					r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + dID, cookie: mine})
					require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
				case "others":
					r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: mine})
					require.Equal(t, http.StatusOK, r.StatusCode, r.body)
				case "signout-all":
					require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/sessions", cookie: mine}).StatusCode)
				case "revoke-user":
					_, err := e.auth.RevokeUser(context.Background(), "plurality", "zed")
					require.NoError(t, err)
				}
				h.mu.Lock()
				require.Empty(t, h.hooks, "both continuations ran")
				h.mu.Unlock()
				require.NotEqual(t, d1, cookie)
				r := e.do(req{path: "/api/me", cookie: cookie})
				assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "%s: device D, continued during the heirs' ending, outlived its sign-out: %s", how, r.body)
				list, err := e.auth.Sessions(context.Background(), "plurality", "zed")
				require.NoError(t, err)
				for _, s := range list {
					assert.NotEqual(t, dID, s.ID, "%s: a session of the signed-out device D is listed live", how)
				}
			})
		})
	}
}

// endFirst runs its hook once, right before the first End while armed:
// a sign-out has chosen its session and not ended it yet.
type endFirst struct {
	*listSteps
	hook func()
}

func (h *endFirst) End(ctx context.Context, ends ...backend.Ending) error {
	h.mu.Lock()
	f := h.hook
	h.hook = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return h.listSteps.End(ctx, ends...)
}

// The same with a device signing itself out (DELETE /auth/session):
// another tab of D continues the session just before the sign-out's end
// (an heir), and once more after the heirs' listing.
func TestASelfSignOutEndsADoublyContinuedTab(t *testing.T) {
	stores(t, func(t *testing.T, kind string) {
		var h *endFirst
		e := newEnv(t, kind, func(c *middleware.Config) { h = &endFirst{listSteps: &listSteps{Store: c.Store}}; c.Store = h })
		_, d1 := e.signIn("zed")
		dID := idOf(t, e, d1)
		cookie := d1
		cont := func() {
			r := e.do(req{path: "/api/me", cookie: cookie, bearer: e.fake.Issue("zed", time.Hour)})
			require.Equal(t, http.StatusOK, r.StatusCode, r.body)
			cookie = r.sessionCookie().Value
		}
		h.mu.Lock()
		h.hook = cont
		h.mu.Unlock()
		h.arm(cont)
		require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: d1}).StatusCode)
		r := e.do(req{path: "/api/me", cookie: cookie})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "device D signed itself out and lives on: %s", r.body)
		list, err := e.auth.Sessions(context.Background(), "plurality", "zed")
		require.NoError(t, err)
		for _, s := range list {
			assert.NotEqual(t, dID, s.ID, "a session of the signed-out device is listed live")
		}
	})
}
