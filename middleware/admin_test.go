package middleware_test

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

const adminKey = "back-office-key-0123456789"

// bearerKey is the README's authorize: a static bearer key compared in
// constant time.
func bearerKey(key string) func(*http.Request) error {
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return middleware.ErrUnauthenticated
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			return errors.New("wrong key")
		}
		return nil
	}
}

// adminDo sends one request to the admin server at base with key ("" for
// none) and returns its status and body.
func adminDo(t *testing.T, base, method, path, key string) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
	require.NoError(t, err)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

func adminIDs(t *testing.T, body string) []string {
	t.Helper()
	var v struct {
		Sessions []struct {
			ID     string `json:"id"`
			UserID string `json:"userId"`
		} `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	require.NotNil(t, v.Sessions, "an empty list is [], not null: %s", body)
	ids := []string{}
	for _, s := range v.Sessions {
		ids = append(ids, s.ID)
	}
	return sortedStrings(ids)
}

func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind)
		admin := httptest.NewServer(e.auth.AdminRoutes("/admin", bearerKey(adminKey)))
		t.Cleanup(admin.Close)
		tokens, sessions := threeDevices(e)
		_, slashy := e.signIn("team/a b:ü")
		ids := e.listedIDs(t, "uma")
		require.Len(t, ids, 3)

		// Nobody gets in without the key, whatever the path.
		for _, path := range []string{"/admin/users/plurality/uma/sessions", "/admin/nowhere", "/elsewhere"} {
			for _, method := range []string{http.MethodGet, http.MethodDelete} {
				res, body := adminDo(t, admin.URL, method, path, "")
				assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s %s without a key", method, path)
				assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))
				assert.Contains(t, body, `"unauthorized"`)
				res, body = adminDo(t, admin.URL, method, path, "wrong-key")
				assert.Equal(t, http.StatusForbidden, res.StatusCode, "%s %s with a wrong key", method, path)
				assert.Contains(t, body, `"forbidden"`)
			}
		}
		assert.Equal(t, ids, e.listedIDs(t, "uma"), "nothing ended")

		res, body := adminDo(t, admin.URL, http.MethodGet, "/admin/users/plurality/uma/sessions", adminKey)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Equal(t, ids, adminIDs(t, body))
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		for _, s := range append(sessions[:], tokens[:]...) {
			assert.NotContains(t, body, s, "no token in the listing")
		}
		assert.NotContains(t, body, `"current":true`)

		// Path segments are percent-decoded once and matched exactly.
		res, body = adminDo(t, admin.URL, http.MethodGet, "/admin/users/plurality/team%2Fa%20b%3A%C3%BC/sessions", adminKey)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Len(t, adminIDs(t, body), 1)
		for _, path := range []string{
			"/admin/users/plurality/team%252Fa%2520b%253A%25C3%25BC/sessions", // decoded twice
			"/admin/users/plurality/UMA/sessions",
			"/admin/users/Plurality/uma/sessions",
			"/admin/users/plurality/nobody/sessions",
		} {
			res, body = adminDo(t, admin.URL, http.MethodGet, path, adminKey)
			require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, body)
			assert.Empty(t, adminIDs(t, body), "%s: an unknown user has no sessions", path)
		}
		res, _ = adminDo(t, admin.URL, http.MethodGet, "/admin/users/plurality/team/a b/sessions", adminKey)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, "an unescaped slash is another path")

		// One session by public id.
		target := e.publicID(t, sessions[1])
		res, body = adminDo(t, admin.URL, http.MethodDelete, "/admin/users/plurality/uma/sessions/"+target, adminKey)
		require.Equal(t, http.StatusNoContent, res.StatusCode, body)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessions[1]}).StatusCode)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: tokens[1]}).StatusCode, "its token cannot sign in again")
		assert.NotContains(t, e.listedIDs(t, "uma"), target)
		assert.Len(t, e.listedIDs(t, "uma"), 2)
		for _, path := range []string{
			"/admin/users/plurality/uma/sessions/" + target,                  // already ended
			"/admin/users/plurality/uma/sessions/AAAAAAAAAAAAAAAAAAAAAA",     // no such id
			"/admin/users/plurality/someone-else/sessions/" + ids[0],         // another user's id
			"/admin/users/plurality/uma/sessions/" + strings.ToLower(ids[0]), // exact match only
		} {
			res, body = adminDo(t, admin.URL, http.MethodDelete, path, adminKey)
			assert.Equal(t, http.StatusNotFound, res.StatusCode, "%s: %s", path, body)
			assert.Contains(t, body, `"not_found"`)
		}
		assert.Len(t, e.listedIDs(t, "uma"), 2, "nothing else ended")

		// Every session of the user.
		res, body = adminDo(t, admin.URL, http.MethodDelete, "/admin/users/plurality/uma/sessions", adminKey)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.JSONEq(t, `{"ended": 2}`, body)
		assert.Empty(t, e.listedIDs(t, "uma"), "left in the store: none of uma's")
		for i := range 3 {
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: sessions[i]}).StatusCode)
			assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: tokens[i]}).StatusCode)
		}
		assert.Len(t, e.listedIDs(t, "someone-else"), 1, "other users are untouched")
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: slashy}).StatusCode)
		res, body = adminDo(t, admin.URL, http.MethodDelete, "/admin/users/plurality/uma/sessions", adminKey)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.JSONEq(t, `{"ended": 0}`, body)

		res, _ = adminDo(t, admin.URL, http.MethodGet, "/admin/sessions/"+ids[0], adminKey)
		assert.Equal(t, http.StatusNotFound, res.StatusCode, "no route by public id alone")
		res, _ = adminDo(t, admin.URL, http.MethodPost, "/admin/users/plurality/uma/sessions", adminKey)
		assert.NotEqual(t, http.StatusOK, res.StatusCode)
	})
}

func TestAdminRoutesStoreDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", func(c *middleware.Config) { c.ExchangeTimeout = 2 * time.Second })
	admin := httptest.NewServer(e.auth.AdminRoutes("", bearerKey(adminKey)))
	t.Cleanup(admin.Close)
	_, s := e.signIn("uma")
	id := e.publicID(t, s)
	e.redis.Stop()
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/users/plurality/uma/sessions"},
		{http.MethodDelete, "/users/plurality/uma/sessions"},
		{http.MethodDelete, "/users/plurality/uma/sessions/" + id},
	} {
		res, body := adminDo(t, admin.URL, c.method, c.path, adminKey)
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s %s: %s", c.method, c.path, body)
		assert.Contains(t, body, `"session_store_unavailable"`)
		assert.NotEmpty(t, res.Header.Get("Retry-After"))
	}
}

func TestAdminRoutesNeedsAnAuthorize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	assert.PanicsWithValue(t, "sessiongate/middleware: AdminRoutes needs an authorize function (there is no default that lets anyone in)",
		func() { e.auth.AdminRoutes("", nil) })
}

// An authorize function that panics refuses: 403, and the store is not
// read.
func TestAdminRoutesAuthorizeThatPanicsRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, s := e.signIn("uma")
	admin := httptest.NewServer(e.auth.AdminRoutes("", func(*http.Request) error { panic("a bug in the application") }))
	t.Cleanup(admin.Close)
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		rq, err := http.NewRequest(method, admin.URL+"/users/plurality/uma/sessions", nil)
		require.NoError(t, err)
		res, err := admin.Client().Do(rq)
		require.NoError(t, err, "an answer, not a dropped connection")
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode, method)
	}
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: s}).StatusCode, "nothing ended")
	assert.Contains(t, e.logs.String(), "authorize function panicked", "the panic is logged")
	assert.NotContains(t, e.logs.String(), "a bug in the application", "not its value")
}
