// Package engine is sessiongate's session engine: it exchanges frontend
// tokens for sessions, loads, mints, continues, lists and ends them. It
// knows nothing of HTTP: package middleware reads a request's
// credentials, asks the engine, and writes the answer; a backend job
// (revoking a user) uses the engine alone.
//
// Concurrent exchanges of one frontend token share one validation and one
// mint, detached from any one caller's cancellation; processes that share
// a store and a secret mint at most one session per token between them.
package engine

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/sync/singleflight"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
)

// Config configures New. Every field is required unless it says otherwise;
// the middleware fills the defaults.
type Config struct {
	Store backend.Backend
	// Provider validates frontend tokens. It may be nil for an engine that
	// never exchanges (a backend job); Exchange then fails.
	Provider provider.Provider
	Secret   *format.Secret
	// Random is true when the secret was drawn at random for this process:
	// Check then compares its fingerprint but never records it.
	Random bool
	// Lifetime is the longest a session lives.
	Lifetime time.Duration
	// IdleTimeout (0: none) and KeepAliveInterval: see middleware.Config.
	IdleTimeout, KeepAliveInterval time.Duration
	// MaxSessions caps each user's live sessions (0: no limit): see
	// middleware.Config.MaxSessionsPerUser.
	MaxSessions int
	// NegativeCacheTTL is how long a rejected token is refused without an
	// upstream call; not positive disables the cache.
	NegativeCacheTTL time.Duration
	// ExchangeTimeout bounds one exchange, one turn wait, one ending.
	ExchangeTimeout time.Duration
	// Turn, when set, is called before each upstream validation: it waits
	// for ctx's client's turn (a rate-limited client's validations go one
	// at a time) and returns what to call when the validation is done.
	Turn   func(ctx context.Context) (release func(), err error)
	Logger *slog.Logger
	Now    func() time.Time
}

// Engine is the session engine. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	values   *scs.SessionManager
	negative *negativeCache
	records  *recordCache
	flights  singleflight.Group
	// Counters counts what the engine did; read it, never write it.
	Counters Counters
	// storeDownLog and providerDownLog keep an outage from writing a log
	// line per request.
	storeDownLog, providerDownLog everySecond
}

// New returns an engine for cfg.
func New(cfg Config) *Engine {
	sm := scs.New()
	sm.Store = valueStore{cfg.Store}
	sm.Codec = format.Codec{}
	sm.Lifetime = cfg.Lifetime
	sm.HashTokenInStore = false // the store splits tokens itself
	sm.IdleTimeout = 0          // the engine keeps its own, without a write per request
	return &Engine{
		cfg:      cfg,
		values:   sm,
		negative: newNegativeCache(cfg.NegativeCacheTTL, cfg.Now),
		records:  newRecordCache(),
	}
}

// Values returns the scs manager that holds the sessions' scs values
// (the handlers' own): its Get, Put and the like work on a context that
// Load, Exchange or NoSession returned.
func (e *Engine) Values() *scs.SessionManager { return e.values }

// NoSession returns ctx with an empty scs session that is never saved:
// scs's API works on it (reads give zero values, writes are dropped).
func (e *Engine) NoSession(ctx context.Context) context.Context {
	ctx, _ = e.values.Load(ctx, "") // an empty token: no store read, no error
	return ctx
}

// Key returns the store key of the sessions minted from a frontend token.
func (e *Engine) Key(front string) string { return e.cfg.Secret.Key(front) }

// Check reports whether the store can do what sign-in and sign-out need,
// and whether it keeps this secret's fingerprint (recording it when the
// store has none and the secret is not Random).
func (e *Engine) Check(ctx context.Context) (err error) {
	defer e.recoverInto(&err, "store")
	return e.cfg.Store.Check(ctx, e.cfg.Secret.Fingerprint(), !e.cfg.Random)
}

// CheckSecret is Check that never records the fingerprint: for a caller
// that must not claim a store for its secret (a backend job), only learn
// that the store keeps another one (backend.ErrSecretMismatch).
func (e *Engine) CheckSecret(ctx context.Context) (err error) {
	defer e.recoverInto(&err, "store")
	return e.cfg.Store.Check(ctx, e.cfg.Secret.Fingerprint(), false)
}

// Counters is what an Engine did since New: counters that only grow.
type Counters struct {
	Reused, Exchanges, Minted, Ended             atomic.Int64
	UpstreamCalls, UpstreamErrors, UpstreamNanos atomic.Int64
	NegativeHits, CacheHits, CacheMisses         atomic.Int64
	StoreErrors                                  atomic.Int64
}

// upstream records one provider call that took d; failed when the
// provider, not the token, was at fault.
func (c *Counters) upstream(d time.Duration, failed bool) {
	c.UpstreamCalls.Add(1)
	c.UpstreamNanos.Add(int64(d))
	if failed {
		c.UpstreamErrors.Add(1)
	}
}

// StoreUnavailable logs, at most once a second, that the store could not
// answer.
func (e *Engine) StoreUnavailable(err error) {
	if n, ok := e.storeDownLog.due(e.cfg.Now()); ok {
		e.cfg.Logger.Error("sessiongate: session store unavailable; logged at most once a second", "error", err, "since_last_logged", n)
	}
}

// providerName is the provider's name, "" without one.
func (e *Engine) providerName() string {
	if e.cfg.Provider == nil {
		return ""
	}
	return e.cfg.Provider.Name()
}

// detached returns a context for a write that ends sessions: it keeps
// ctx's values but not its cancellation, so a client that leaves does not
// undo its sign-out, and it is bounded by ExchangeTimeout instead.
func (e *Engine) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ExchangeTimeout)
}

// everySecond lets an event that can repeat per request (an outage) be
// logged at most once a second, with how many times it happened since.
// The zero value is ready; it is safe for concurrent use.
type everySecond struct {
	last  atomic.Int64 // unix ns of the last logged time
	since atomic.Int64 // events since
}

// due counts one event at now and reports whether to log it, with the
// number of events since the last one logged (this one included).
func (e *everySecond) due(now time.Time) (int64, bool) {
	n := e.since.Add(1)
	t, last := now.UnixNano(), e.last.Load()
	if t-last < int64(time.Second) || !e.last.CompareAndSwap(last, t) {
		return 0, false
	}
	e.since.Add(-n)
	return n, true
}
