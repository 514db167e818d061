package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

func TestPolicyConfig(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, 15*time.Minute, cfg.StepUpMaxAge, "step-up on by default")
	assert.Zero(t, cfg.MaxPerUser, "no device limit by default")
	assert.Empty(t, cfg.AdminAddr, "no back-office listener by default")

	for name, env := range map[string]map[string]string{
		"step-up":         {"SESSION_STEP_UP_MAX_AGE": "soon"},
		"negative":        {"SESSION_STEP_UP_MAX_AGE": "-1m"},
		"max per user":    {"SESSION_MAX_PER_USER": "two"},
		"negative max":    {"SESSION_MAX_PER_USER": "-1"},
		"admin addr only": {"ADMIN_ADDR": "127.0.0.1:9091"},
		"admin key only":  {"ADMIN_TOKEN": "0123456789abcdef0123"},
		"short admin key": {"ADMIN_ADDR": "127.0.0.1:9091", "ADMIN_TOKEN": "short"},
		"admin addr":      {"ADMIN_ADDR": "9091", "ADMIN_TOKEN": "0123456789abcdef0123"},
	} {
		_, err := configFrom(func(k string) string { return env[k] })
		assert.Error(t, err, name)
	}
	cfg, err = configFrom(func(k string) string {
		return map[string]string{"SESSION_STEP_UP_MAX_AGE": "0", "SESSION_MAX_PER_USER": "3",
			"ADMIN_ADDR": "127.0.0.1:9091", "ADMIN_TOKEN": "admin-token-secret-value"}[k]
	})
	require.NoError(t, err)
	assert.Zero(t, cfg.StepUpMaxAge, "0 turns step-up off")
	assert.Equal(t, 3, cfg.MaxPerUser)
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), "admin-token-secret-value")
}

// exchange signs user in on srv with a dev token and returns the session
// cookie's value.
func devSignIn(t *testing.T, srv *httptest.Server, user string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+devTokenFor(t, srv, user))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	return res.Cookies()[0].Value
}

func devTokenFor(t *testing.T, srv *httptest.Server, user string) string {
	t.Helper()
	res, err := http.Post(srv.URL+"/dev/token?user="+user, "", nil)
	require.NoError(t, err)
	defer res.Body.Close()
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	return tok.Token
}

func send(t *testing.T, method, url, cookie, bearer string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// The example's composition on Redis: step-up on the sign-out-everywhere
// routes, two devices per user, and the back-office API.
func TestPoliciesOnRedis(t *testing.T) {
	t.Parallel()
	redis := storetest.Start(t)
	cfg, err := configFrom(func(k string) string {
		return map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redis.URL, "SESSION_STEP_UP_MAX_AGE": "1s",
			"SESSION_MAX_PER_USER": "2", "ADMIN_ADDR": "127.0.0.1:1", "ADMIN_TOKEN": "admin-token-0123456789"}[k]
	})
	require.NoError(t, err)
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	srv, admin := httptest.NewServer(a.handler), httptest.NewServer(a.admin)
	t.Cleanup(srv.Close)
	t.Cleanup(admin.Close)

	first := devSignIn(t, srv, "alice")
	time.Sleep(5 * time.Millisecond) // distinct sign-in times: the limit ends the least recently used
	second := devSignIn(t, srv, "alice")
	time.Sleep(5 * time.Millisecond)
	third := devSignIn(t, srv, "alice")
	res, _ := send(t, http.MethodGet, srv.URL+"/api/me", first, "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "the third device ended the least recently used")

	time.Sleep(1100 * time.Millisecond) // past the step-up max age (a wait, not a measurement)
	res, body := send(t, http.MethodDelete, srv.URL+"/auth/sessions/others", third, "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, body)
	assert.Equal(t, `Bearer error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=1`,
		res.Header.Get("WWW-Authenticate"))
	res, body = send(t, http.MethodDelete, srv.URL+"/auth/sessions/others", third, devTokenFor(t, srv, "alice"))
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.JSONEq(t, `{"signedOut": 1}`, body)
	res, _ = send(t, http.MethodGet, srv.URL+"/api/me", second, "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)

	res, _ = send(t, http.MethodGet, admin.URL+"/users/plurality/alice/sessions", "", "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, body = send(t, http.MethodGet, admin.URL+"/users/plurality/alice/sessions", "", "admin-token-0123456789")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, 1, strings.Count(body, `"userId":"alice"`), body)
	res, body = send(t, http.MethodDelete, admin.URL+"/users/plurality/alice/sessions", "", "admin-token-0123456789")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.JSONEq(t, `{"ended": 1}`, body)
}

// TestProcessServesTheBackOfficeOnItsOwnListener runs the binary with
// ADMIN_ADDR and ADMIN_TOKEN: the API is there, behind the key, and only
// there.
func TestProcessServesTheBackOfficeOnItsOwnListener(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", storetest.FreePort(t))
	p := startApp(t, map[string]string{"ADMIN_ADDR": addr, "ADMIN_TOKEN": "admin-token-0123456789"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/users/plurality/alice/sessions", nil)
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		res, err := http.DefaultClient.Do(req)
		require.NoError(c, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(c, http.StatusOK, res.StatusCode)
		assert.JSONEq(c, `{"sessions": []}`, string(body))
	}, 10*time.Second, 20*time.Millisecond, "the back-office listener answers")
	assert.Equal(t, http.StatusNotFound, p.do(call{path: "/users/plurality/alice/sessions"}).status, "not on ADDR")
}
