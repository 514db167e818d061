package middleware

import (
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/internal/engine"
)

// Metrics is what one Auth has done since New: counters that only grow,
// and the total time spent waiting for the provider, counted from its
// events (see Event; an Observer such as the OpenTelemetry adapter,
// module otelsessiongate, gives the same with attributes). Read it with
// Auth.Metrics: a snapshot for tests and health pages.
type Metrics struct {
	// SessionsReused counts requests answered from an existing session
	// (cookie, session header, or a frontend token's existing session:
	// EventReused and EventExchanged).
	SessionsReused int64
	// Exchanges counts frontend tokens looked up because they were not the
	// carried session's (EventExchange): each ends reused, minted,
	// rejected or failed.
	Exchanges int64
	// SessionsMinted counts sessions created (EventMinted), continuations
	// of a device's session included. SessionsEnded counts sessions
	// signed out, revoked, replaced or ended for the session limit
	// (EventEnded), not those continued or seen expired.
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
	// not and did need decoding (the engine's own count, not events).
	RecordCacheHits, RecordCacheMisses int64
	// RateLimited counts requests refused with 429.
	RateLimited int64
	// StoreErrors counts store operations that failed (the store was
	// unavailable).
	StoreErrors int64
}

// counters is the consumer of events behind Metrics.
type counters struct {
	reused, exchanges, minted, ended        atomic.Int64
	upstreamCalls, upstreamErrors, upstream atomic.Int64 // upstream: nanoseconds
	rejected, negativeHits, rateLimited     atomic.Int64
	storeErrors                             atomic.Int64
}

// count counts ev.
func (c *counters) count(ev *engine.Event) {
	switch EventKind(ev.Kind) {
	case EventReused, EventExchanged:
		c.reused.Add(1)
	case EventExchange:
		c.exchanges.Add(1)
	case EventMinted:
		c.minted.Add(1)
	case EventEnded:
		if r := Reason(ev.Reason); r != ReasonContinued && r != ReasonExpired {
			c.ended.Add(1)
		}
	case EventUpstream:
		c.upstreamCalls.Add(1)
		c.upstream.Add(int64(ev.Duration))
		if Reason(ev.Reason) == ReasonUnavailable {
			c.upstreamErrors.Add(1)
		}
	case EventRejected:
		r := Reason(ev.Reason)
		if r != ReasonCrossOrigin {
			c.rejected.Add(1)
		}
		if r == ReasonRejectedRecently {
			c.negativeHits.Add(1)
		}
	case EventRateLimited:
		c.rateLimited.Add(1)
	case EventStoreError:
		c.storeErrors.Add(1)
	}
}

// Metrics returns the counters as they are now.
func (a *Auth) Metrics() Metrics {
	c, e := &a.counters, &a.engine.Counters
	return Metrics{
		SessionsReused:    c.reused.Load(),
		Exchanges:         c.exchanges.Load(),
		SessionsMinted:    c.minted.Load(),
		SessionsEnded:     c.ended.Load(),
		UpstreamCalls:     c.upstreamCalls.Load(),
		UpstreamErrors:    c.upstreamErrors.Load(),
		UpstreamSeconds:   time.Duration(c.upstream.Load()).Seconds(),
		TokensRejected:    c.rejected.Load(),
		NegativeCacheHits: c.negativeHits.Load(),
		RecordCacheHits:   e.CacheHits.Load(),
		RecordCacheMisses: e.CacheMisses.Load(),
		RateLimited:       c.rateLimited.Load(),
		StoreErrors:       c.storeErrors.Load(),
	}
}
