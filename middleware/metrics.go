package middleware

import (
	"sync/atomic"
	"time"
)

// Metrics is what one Auth has done since New: counters that only grow,
// and the total time spent waiting for the provider. Read it with
// Auth.Metrics and hand it to your metrics system (examples/chi-app
// serves it in the Prometheus text format).
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
