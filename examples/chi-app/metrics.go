package main

import (
	"fmt"
	"net/http"

	"github.com/sessiongate/sessiongate/middleware"
)

// metricsHandler serves auth's counters (Auth.Metrics) in the Prometheus
// text format (version 0.0.4), names prefixed sessiongate_, with no
// Prometheus library. The app serves it at GET /metrics on METRICS_ADDR,
// a listener of its own, so that it is reachable only where that address
// is: put it behind whatever protects your other internal endpoints.
func metricsHandler(auth *middleware.Auth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := auth.Metrics()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		counter := func(name, help string, v int64) {
			fmt.Fprintf(w, "# HELP sessiongate_%s %s\n# TYPE sessiongate_%s counter\nsessiongate_%s %d\n", name, help, name, name, v)
		}
		counter("sessions_reused_total", "Requests answered from an existing session.", m.SessionsReused)
		counter("exchanges_total", "Frontend tokens looked up for a session.", m.Exchanges)
		counter("sessions_minted_total", "Sessions created.", m.SessionsMinted)
		counter("sessions_ended_total", "Sessions signed out, revoked or replaced.", m.SessionsEnded)
		counter("upstream_errors_total", "Provider calls that failed on the provider's side.", m.UpstreamErrors)
		counter("tokens_rejected_total", "Frontend tokens answered 401 invalid_token.", m.TokensRejected)
		counter("negative_cache_hits_total", "Rejected tokens refused again without an upstream call.", m.NegativeCacheHits)
		counter("record_cache_hits_total", "Session reads that needed no decoding.", m.RecordCacheHits)
		counter("record_cache_misses_total", "Session reads that decoded the stored session.", m.RecordCacheMisses)
		counter("rate_limited_total", "Requests refused with 429 after failed credentials.", m.RateLimited)
		counter("store_errors_total", "Session store operations that failed.", m.StoreErrors)
		fmt.Fprintf(w, "# HELP sessiongate_upstream_seconds Time spent in provider calls.\n# TYPE sessiongate_upstream_seconds summary\n"+
			"sessiongate_upstream_seconds_sum %g\nsessiongate_upstream_seconds_count %d\n", m.UpstreamSeconds, m.UpstreamCalls)
	})
}
