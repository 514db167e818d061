package middleware

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Metrics is what one Auth has done since New: counters that only grow,
// and the total time spent waiting for the provider. Read it with
// Auth.Metrics, or serve it to Prometheus with Auth.MetricsHandler.
type Metrics struct {
	// SessionsReused counts requests answered from an existing session
	// (cookie, session header, or a frontend token's existing session).
	SessionsReused int64
	// Exchanges counts frontend tokens looked up because they were not the
	// carried session's: each ends reused, minted, rejected or failed.
	Exchanges int64
	// SessionsMinted and SessionsEnded count sessions created and ended
	// (signed out, revoked, replaced).
	SessionsMinted, SessionsEnded int64
	// UpstreamCalls counts calls to the provider; UpstreamErrors those that
	// failed for the provider's reasons (down, slow, 5xx); UpstreamSeconds
	// is the time spent in all of them.
	UpstreamCalls, UpstreamErrors int64
	UpstreamSeconds               float64 // see UpstreamCalls
	// TokensRejected counts frontend tokens answered 401 invalid_token
	// (malformed, rejected upstream, signed out); NegativeCacheHits those
	// of them refused from the negative cache, with no upstream call.
	TokensRejected, NegativeCacheHits int64
	// RecordCacheHits and RecordCacheMisses count session reads that did
	// and did not need decoding.
	RecordCacheHits, RecordCacheMisses int64
	// RateLimited counts requests refused with 429.
	RateLimited int64
	// StoreErrors counts store operations that failed (the store was
	// unavailable).
	StoreErrors int64
}

// counters is what the HTTP face counts itself; the engine counts the
// rest (engine.Counters).
type counters struct {
	reused, rejected, rateLimited atomic.Int64
}

// Metrics returns the counters as they are now.
func (a *Auth) Metrics() Metrics {
	c, e := &a.counters, &a.engine.Counters
	return Metrics{
		SessionsReused:    c.reused.Load() + e.Reused.Load(),
		Exchanges:         e.Exchanges.Load(),
		SessionsMinted:    e.Minted.Load(),
		SessionsEnded:     e.Ended.Load(),
		UpstreamCalls:     e.UpstreamCalls.Load(),
		UpstreamErrors:    e.UpstreamErrors.Load(),
		UpstreamSeconds:   time.Duration(e.UpstreamNanos.Load()).Seconds(),
		TokensRejected:    c.rejected.Load(),
		NegativeCacheHits: e.NegativeHits.Load(),
		RecordCacheHits:   e.CacheHits.Load(),
		RecordCacheMisses: e.CacheMisses.Load(),
		RateLimited:       c.rateLimited.Load(),
		StoreErrors:       e.StoreErrors.Load(),
	}
}

// MetricsHandler serves Metrics in the Prometheus text format (version
// 0.0.4), names prefixed sessiongate_: mount it where your scraper looks,
// behind whatever protects your other internal endpoints. It needs no
// Prometheus library.
func (a *Auth) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := a.Metrics()
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
