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

// counters is Metrics, atomically.
type counters struct {
	reused, exchanges, minted, ended         atomic.Int64
	upstreamCalls, upstreamErrors, upstreamN atomic.Int64
	rejected, negativeHits                   atomic.Int64
	cacheHits, cacheMisses                   atomic.Int64
	rateLimited, storeErrors                 atomic.Int64
}

// upstream records one provider call that took d; failed when the
// provider, not the token, was at fault.
func (c *counters) upstream(d time.Duration, failed bool) {
	c.upstreamCalls.Add(1)
	c.upstreamN.Add(int64(d))
	if failed {
		c.upstreamErrors.Add(1)
	}
}

// Metrics returns the counters as they are now.
func (a *Auth) Metrics() Metrics {
	c := &a.counters
	return Metrics{
		SessionsReused:    c.reused.Load(),
		Exchanges:         c.exchanges.Load(),
		SessionsMinted:    c.minted.Load(),
		SessionsEnded:     c.ended.Load(),
		UpstreamCalls:     c.upstreamCalls.Load(),
		UpstreamErrors:    c.upstreamErrors.Load(),
		UpstreamSeconds:   time.Duration(c.upstreamN.Load()).Seconds(),
		TokensRejected:    c.rejected.Load(),
		NegativeCacheHits: c.negativeHits.Load(),
		RecordCacheHits:   c.cacheHits.Load(),
		RecordCacheMisses: c.cacheMisses.Load(),
		RateLimited:       c.rateLimited.Load(),
		StoreErrors:       c.storeErrors.Load(),
	}
}
