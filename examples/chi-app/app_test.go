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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

func newTestApp(t *testing.T, env map[string]string) *httptest.Server {
	t.Helper()
	srv, _ := newTestAppWithMetrics(t, env)
	return srv
}

// newTestAppWithMetrics serves the app of env, and its metrics listener's
// router (METRICS_ADDR's) on a server of its own.
func newTestAppWithMetrics(t *testing.T, env map[string]string) (app, metrics *httptest.Server) {
	t.Helper()
	cfg, err := configFrom(func(k string) string { return env[k] })
	require.NoError(t, err)
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	app, metrics = httptest.NewServer(a.handler), httptest.NewServer(a.metrics)
	t.Cleanup(app.Close)
	t.Cleanup(metrics.Close)
	return app, metrics
}

func TestDevModeEndToEnd(t *testing.T) {
	t.Parallel()
	srv := newTestApp(t, map[string]string{})

	res, err := http.Post(srv.URL+"/dev/token?user=alice", "", nil)
	require.NoError(t, err)
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	require.NotEmpty(t, tok.Token)

	req, _ := http.NewRequest("POST", srv.URL+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	var ex struct {
		User    map[string]string
		Session map[string]any
	}
	require.NoError(t, json.Unmarshal(body, &ex))
	assert.Equal(t, map[string]string{"id": "alice", "provider": "plurality"}, ex.User)
	header := res.Header.Get("X-Session-Token")
	require.NotEmpty(t, header)
	cookie := res.Cookies()[0]
	assert.False(t, cookie.Secure, "dev mode serves plain http on loopback")

	req, _ = http.NewRequest("GET", srv.URL+"/api/me", nil)
	req.Header.Set("X-Session-Token", header)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.JSONEq(t, `{"user":{"id":"alice","provider":"plurality"}}`, string(body))

	res, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "<title>sessiongate demo</title>")

	for _, bad := range []string{"", "a%20b", strings.Repeat("x", 65)} {
		res, err = http.Post(srv.URL+"/dev/token?user="+bad, "", nil)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, bad)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	redis := storetest.Start(t)
	srv := newTestApp(t, map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redis.URL})
	res, err := http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	redis.Stop()
	res, err = http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

func TestDevTokenOnlyInDevMode(t *testing.T) {
	t.Parallel()
	srv := newTestApp(t, map[string]string{"PROVIDER": "plurality", "PLURALITY_API_URL": "http://127.0.0.1:1/api",
		"PLURALITY_CLIENT_ID": "id", "PLURALITY_CLIENT_SECRET": "secret"})
	res, err := http.Post(srv.URL+"/dev/token?user=alice", "", nil)
	require.NoError(t, err)
	res.Body.Close()
	assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, res.StatusCode, "no dev upstream outside dev mode")
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := configFrom(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.Addr)
	assert.Equal(t, "memory", cfg.Store)
	assert.Equal(t, "dev", cfg.Provider)
	assert.Equal(t, "redis://127.0.0.1:6379/0", cfg.RedisURL)
	assert.Equal(t, "https://app.plurality.network/api", cfg.PluralityURL)
	assert.True(t, cfg.SecretWasDefault)
	assert.Empty(t, cfg.MetricsAddr, "no metrics listener by default")

	for name, env := range map[string]map[string]string{
		"store":      {"SESSION_STORE": "disk"},
		"provider":   {"PROVIDER": "nope"},
		"plurality":  {"PROVIDER": "plurality"},
		"lifetime":   {"SESSION_LIFETIME": "soon"},
		"secret":     {"SESSION_SECRET": "short"},
		"secure":     {"COOKIE_SECURE": "maybe"},
		"para key":   {"PROVIDER": "para"},
		"para aud":   {"PROVIDER": "parajwt"},
		"para url":   {"PROVIDER": "para", "PARA_SECRET_API_KEY": "sk", "PARA_API_URL": "staging"},
		"both para":  {"PROVIDER": "para,parajwt", "PARA_SECRET_API_KEY": "sk", "PARA_JWT_AUDIENCE": "aud"},
		"twice":      {"PROVIDER": "parajwt,parajwt", "PARA_JWT_AUDIENCE": "aud"},
		"dev mixed":  {"PROVIDER": "dev,parajwt", "PARA_JWT_AUDIENCE": "aud"},
		"metrics":    {"METRICS_ADDR": "9090"},
		"tls plain":  {"REDIS_URL": "redis://h:6379", "REDIS_TLS_CA_FILE": "ca.pem"},
		"tls ca":     {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"},
		"tls ca pem": {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CA_FILE": "app_test.go"},
		"tls half":   {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CERT_FILE": "app_test.go"},
		"tls pair":   {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CERT_FILE": "app_test.go", "REDIS_TLS_KEY_FILE": "app_test.go"},
	} {
		_, err := configFrom(func(k string) string { return env[k] })
		assert.Error(t, err, name)
	}
	cfg, _ = configFrom(func(k string) string {
		return map[string]string{"PROVIDER": "plurality", "PLURALITY_CLIENT_ID": "id", "PLURALITY_CLIENT_SECRET": "topsecret-value"}[k]
	})
	assert.True(t, cfg.CookieSecure, "Secure outside dev mode")
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), "topsecret-value")

	cfg, err = configFrom(func(k string) string {
		return map[string]string{"PROVIDER": "para, plurality", "PARA_SECRET_API_KEY": "sk_live_secret-value", "PARA_API_URL": "beta",
			"PLURALITY_CLIENT_ID": "id", "PLURALITY_CLIENT_SECRET": "s"}[k]
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"plurality", "para"}, cfg.Providers, "para, the catch-all, goes last")
	assert.Equal(t, "https://api.beta.getpara.com", cfg.ParaURL)
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), "sk_live_secret-value")
	cfg, err = configFrom(func(k string) string { return map[string]string{"PROVIDER": "parajwt", "PARA_JWT_AUDIENCE": "aud"}[k] })
	require.NoError(t, err)
	assert.Equal(t, "https://api.getpara.com", cfg.ParaURL, "PROD by default")
}
