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
	Turn func(ctx context.Context) (release func(), err error)
	// Observer, when set, receives the engine's events (event.go).
	Observer Observer
	// Logger gets what is not an event: a recovered panic, an
	// undecodable record, a provider that ignores its context.
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
	// lookupAt is cfg.Store's LookupAt, nil when it has none.
	lookupAt backend.LookupAt
	// scsKey is the context key of values' session data (scsKeyOf).
	scsKey any
	// Counters counts the record cache's work; read it, never write it.
	// What the engine did is told by events (Config.Observer).
	Counters Counters
}

// New returns an engine for cfg.
func New(cfg Config) *Engine {
	// One store, one clock: the first engine's (a middleware has given
	// it its own already), read by every engine on the store; a store
	// without one (Redis) leaves the engine's.
	backend.UseClock(cfg.Store, backend.WallClock(cfg.Now))
	if c, ok := backend.ClockOf(cfg.Store); ok {
		cfg.Now = c.Now
	}
	sm := scs.New()
	sm.Store = valueStore{cfg.Store}
	sm.Codec = format.Codec{}
	sm.Lifetime = cfg.Lifetime
	sm.HashTokenInStore = false // the store splits tokens itself
	sm.IdleTimeout = 0          // the engine keeps its own, without a write per request
	e := &Engine{
		cfg:      cfg,
		values:   sm,
		negative: newNegativeCache(cfg.NegativeCacheTTL, cfg.Now),
		records:  newRecordCache(),
		scsKey:   scsKeyOf(sm),
	}
	e.lookupAt, _ = cfg.Store.(backend.LookupAt)
	return e
}

// Values returns the scs manager that holds the sessions' scs values
// (the handlers' own): its Get, Put and the like work on a context whose
// Value answers scs's key from a RequestValues.
func (e *Engine) Values() *scs.SessionManager { return e.values }

// Key returns the store key of the sessions minted from a frontend token.
func (e *Engine) Key(front string) string { return e.cfg.Secret.Key(front) }

// Selector returns the selector of the sessions minted from a frontend
// token (Exchange's sel): one pass over the token.
func (e *Engine) Selector(front string) format.Selector { return e.cfg.Secret.Selector(front) }

// Known reports whether this process has recently seen a session at sel's
// key (its record cache holds one). Every session is minted from a
// frontend token that passed provider.ValidSyntax, and a selector is a
// 128-bit keyed hash of its token: a frontend token whose selector is
// known is one whose syntax was checked already, so a steady request need
// not read it a second time. An unknown one proves nothing (the cache is
// bounded): check its syntax.
func (e *Engine) Known(sel format.Selector) bool { return e.records.peek(sel).s != nil }

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

// Counters counts session reads that did (CacheMisses) and did not
// (CacheHits) decode the stored record: counters that only grow.
type Counters struct {
	CacheHits, CacheMisses atomic.Int64
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
