package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/store/storetest"
)

func TestMetricsInPrometheusFormat(t *testing.T) {
	t.Parallel()
	srv, metrics := newTestAppWithMetrics(t, map[string]string{})
	res, err := http.Post(srv.URL+"/dev/token?user=mia", "", nil)
	require.NoError(t, err)
	var tok struct{ Token string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err = http.DefaultClient.Do(req) // exchange, upstream call, mint
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)

	res, err = http.Get(metrics.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "version=0.0.4")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Contains(t, string(body), "# TYPE sessiongate_sessions_minted_total counter\nsessiongate_sessions_minted_total 1\n")
	assert.Contains(t, string(body), "sessiongate_exchanges_total 1\n")
	assert.Contains(t, string(body), "sessiongate_upstream_seconds_count 1\n")
	assert.Regexp(t, `(?m)^sessiongate_upstream_seconds_sum [0-9.e-]+$`, string(body))
	assert.Contains(t, string(body), "sessiongate_rate_limited_total 0\n")
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		assert.Regexp(t, `^(# (HELP|TYPE) sessiongate_[a-z_]+ .+|sessiongate_[a-z_]+ [0-9.e+-]+)$`, line, "Prometheus text format")
	}

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
// METRICS_ADDR set: the counters are there, and only there.
func TestProcessServesMetricsOnItsOwnListener(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", storetest.FreePort(t))
	p := startApp(t, map[string]string{"METRICS_ADDR": addr})
	// Healthy is ADDR's word; the metrics listener starts beside it.
	var body []byte
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := http.Get("http://" + addr + "/metrics")
		require.NoError(c, err)
		defer res.Body.Close()
		body, _ = io.ReadAll(res.Body)
		assert.Equal(c, http.StatusOK, res.StatusCode)
	}, 10*time.Second, 20*time.Millisecond, "the metrics listener answers")
	assert.Contains(t, string(body), "sessiongate_sessions_minted_total 0\n")
	assert.Equal(t, http.StatusNotFound, p.do(call{path: "/metrics"}).status, "not on ADDR")
}
