package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

// signInAt signs a new dev user in at the app at base (POST /dev/token,
// then POST /auth/session) and returns the session cookie's value.
func signInAt(t *testing.T, base, user, agent string) string {
	t.Helper()
	res, err := http.Post(base+"/dev/token?user="+user, "", nil)
	require.NoError(t, err)
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	req, _ := http.NewRequest("POST", base+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("User-Agent", agent)
	res, err = http.DefaultClient.Do(req) // exchange, upstream call, mint
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	for _, c := range res.Cookies() {
		if c.Name == "session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestMetricsThroughOpenTelemetry: one exchange shows in the Prometheus
// scrape of the metrics router, made by OTel's exporter from the
// middleware's events; the router answers GET only and is not the app's.
func TestMetricsThroughOpenTelemetry(t *testing.T) {
	t.Parallel()
	srv, metrics := newTestAppWithMetrics(t, map[string]string{})
	signInAt(t, srv.URL, "mia", "test")

	res, err := http.Get(metrics.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "text/plain")
	text := string(body)
	assert.Regexp(t, `(?m)^sessiongate_exchanges_total\{[^}]*sessiongate_outcome="minted"[^}]*sessiongate_provider="plurality"[^}]*\} 1$`, text)
	assert.Regexp(t, `(?m)^sessiongate_sessions_minted_total\{[^}]*\} 1$`, text)
	assert.Regexp(t, `(?m)^sessiongate_upstream_duration_seconds_count\{[^}]*sessiongate_outcome="valid"[^}]*\} 1$`, text)
	assert.Regexp(t, `(?m)^sessiongate_upstream_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} 1$`, text)

	res, err = http.Post(metrics.URL+"/metrics", "", nil)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "GET only")
	res, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "not on the app's own listener")
}

// TestProcessServesMetricsOnItsOwnListener runs the binary with
// METRICS_ADDR set, signs in through it, and scrapes: sessiongate's
// metrics are there, and only there.
func TestProcessServesMetricsOnItsOwnListener(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", storetest.FreePort(t))
	p := startApp(t, map[string]string{"METRICS_ADDR": addr})
	signInAt(t, p.URL, "mia", "test")
	// Healthy is ADDR's word; the metrics listener starts beside it.
	var body []byte
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := http.Get("http://" + addr + "/metrics")
		require.NoError(c, err)
		defer res.Body.Close()
		body, _ = io.ReadAll(res.Body)
		assert.Equal(c, http.StatusOK, res.StatusCode)
	}, 10*time.Second, 20*time.Millisecond, "the metrics listener answers")
	assert.Regexp(t, `(?m)^sessiongate_sessions_minted_total\{[^}]*sessiongate_provider="plurality"[^}]*\} 1$`, string(body))
	assert.Regexp(t, `(?m)^sessiongate_upstream_duration_seconds_count\{[^}]*\} 1$`, string(body))
	assert.Equal(t, http.StatusNotFound, p.do(call{path: "/metrics"}).status, "not on ADDR")
}
