package middleware_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idOf returns the public id of the session s opens (cookie).

// Device 1 signs in with A and continues with B (cookie + new token). Device
// 2 is a bearer-only client that signs in with A afterwards (its own session,
// its own public id: TestPublicIDsStayUnique). Device 2 then asks to sign out
// every OTHER session, or revokes device 1 by its id. The caller must stay
// signed in ("all but this one").
func TestSignOutOthersFromABearerOnlyDeviceKeepsTheCaller(t *testing.T) {
	for _, how := range []string{"others", "revoke"} {
		for _, tokenID := range []bool{false, true} {
			t.Run(how, func(t *testing.T) {
				stores(t, func(t *testing.T, kind string) {
					e, _ := newGatedEnv(t, kind, tokenID)
					a := e.exchange("ann.A")
					require.Equal(t, http.StatusCreated, a.StatusCode, a.body)
					b := e.do(req{path: "/api/me", cookie: a.sessionCookie().Value, bearer: "ann.B"})
					require.Equal(t, http.StatusOK, b.StatusCode, b.body)
					sb := b.sessionCookie().Value
					bID := idOf(t, e, sb)

					a2 := e.exchange("ann.A") // device 2, bearer only
					require.Equal(t, http.StatusCreated, a2.StatusCode, a2.body)
					s2 := a2.sessionCookie().Value
					require.NotEqual(t, bID, idOf(t, e, s2))

					switch how {
					case "others":
						r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/others", cookie: s2})
						require.Equal(t, http.StatusOK, r.StatusCode, r.body)
						assert.JSONEq(t, `{"signedOut":1}`, r.body)
					case "revoke":
						r := e.do(req{method: http.MethodDelete, path: "/auth/sessions/" + bID, cookie: s2})
						require.Equal(t, http.StatusNoContent, r.StatusCode, r.body)
					}
					assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sb}).StatusCode, "device 1 is signed out")
					me := e.do(req{path: "/api/me", cookie: s2})
					assert.Equal(t, http.StatusOK, me.StatusCode, "%s (TokenID %v): the caller (device 2) was signed out by signing out the OTHER device: %s", how, tokenID, me.body)
					me = e.do(req{path: "/api/me", bearer: "ann.A"})
					assert.Equal(t, http.StatusOK, me.StatusCode, "%s (TokenID %v): device 2's bearer-only requests: %s", how, tokenID, me.body)
				})
			})
		}
	}
}

// A request of the device holds its session C1 while another tab of the
// same device continues C1 into C2 (same public id: the same device). Then
// the first request calls SignOutOthers. C2 is this very device: it must
// stay signed in, and nothing "other" was signed out.
func TestSignOutOthersRacingItsOwnContinuation(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		_, s := e.signIn("ivy")
		loaded, proceed := make(chan struct{}), make(chan struct{})
		var n int
		var nerr error
		h := e.auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(loaded)
			<-proceed
			n, nerr = e.auth.SignOutOthers(r.Context())
			w.WriteHeader(http.StatusNoContent)
		}))
		done := make(chan int)
		go func() {
			done <- httptestRecorder(h, http.MethodGet, "/x", map[string]string{"X-Session-Token": s}).Code
		}()
		<-loaded
		id := idOf(t, e, s)
		r := e.do(req{path: "/api/me", bearer: e.fake.Issue("ivy", 3600e9), cookie: s})
		require.Equal(t, http.StatusOK, r.StatusCode, r.body)
		next := r.sessionCookie()
		require.NotNil(t, next)
		require.Equal(t, id, idOf(t, e, next.Value), "a continuation keeps the device's id")
		close(proceed)
		require.Equal(t, http.StatusNoContent, <-done)
		require.NoError(t, nerr)
		after := e.do(req{path: "/api/me", cookie: next.Value})
		assert.Equal(t, http.StatusOK, after.StatusCode, "SignOutOthers signed out the calling device itself (its continuation, same public id): %s", after.body)
		assert.Zero(t, n, "SignOutOthers counted the caller's own device as another")
	})
}
