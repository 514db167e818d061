package middleware

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/store"
)

// Config configures New. Provider is required; every other field has a
// default. Printing a Config never shows Secret.
type Config struct {
	// Provider validates frontend tokens.
	Provider provider.Provider

	// Store keeps the sessions: store.NewMemory() or redisstore.New(...).
	// Default: a new memory store, right only for a single process (New
	// logs a warning).
	Store store.Store

	// Lifetime is the longest a session lives, counted from the device's
	// first sign-in; the frontend token's expiry caps it too. Default 24
	// hours.
	Lifetime time.Duration

	// Cookie names and shapes the session cookie. The zero value is the
	// default: see Cookie.
	Cookie Cookie

	// Secret keys the HMAC that turns frontend tokens into session keys
	// and session tokens. Processes that share
	// a store must share it; at least 16 bytes. Default: 32 random bytes
	// made by New, which is right only for a single process with a memory
	// store (New logs a warning).
	Secret provider.Secret

	// TokenHeader is the request header that carries the frontend token.
	// Default "Authorization", read as "Bearer <token>"; any other header
	// is read as the bare token.
	TokenHeader string

	// TokenCookie, when set, is a cookie that carries the frontend token,
	// read when TokenHeader is absent; among several cookies of that name
	// the first well-formed one is taken, unless another is the token of
	// the request's live session. Give it a __Host- name, so that no
	// sibling subdomain can set it.
	TokenCookie string

	// SessionHeader is the request header that carries the session token
	// for non-browser clients, and the response header that hands a new
	// session token out. Default "X-Session-Token".
	SessionHeader string

	// InsecureCookie drops the Secure attribute from the session cookie,
	// for local development over plain http, and with it the default
	// name's __Host- prefix (see Cookie). Default false: the cookie is
	// always Secure.
	InsecureCookie bool

	// IdleTimeout ends a session after this long without recorded
	// activity: a sliding expiry, like Para's keepSessionAlive. It never
	// extends a session past its absolute Expires. Activity is written to
	// the store at most once per KeepAliveInterval, so a session may count
	// as idle up to that much early. Default 0: no idle timeout, and
	// reusing a session never writes.
	IdleTimeout time.Duration

	// KeepAliveInterval is the least time between two writes that record
	// a session's activity, when IdleTimeout or MaxSessionsPerUser is set.
	// Default 1 minute, or IdleTimeout/2 when that is shorter.
	KeepAliveInterval time.Duration

	// MaxSessionsPerUser caps how many live sessions (devices) one user
	// of one provider may have. A sign-in that would exceed it ends the
	// user's least recently used sessions (by recorded activity: with
	// this set, a session's activity is written at most once per
	// KeepAliveInterval, as for IdleTimeout) until it fits: logged as
	// ended with reason "session limit", and marked like a sign-out, so
	// that the ended device's frontend token cannot sign in again; it must
	// get a new one. A device signing in again with a new token continues
	// its session and does not count twice. On the memory store and a
	// single Redis the ending is atomic with the mint: a user never has
	// more than this many live sessions, however many sign in at once.
	// Default 0: no limit.
	MaxSessionsPerUser int

	// NegativeCacheTTL is how long a token the provider rejected is
	// remembered and refused without another upstream call. Default 30 s;
	// negative disables the cache. Upstream errors are never cached.
	NegativeCacheTTL time.Duration

	// GuessBurst and GuessInterval limit guessing, per client address
	// (ClientIP; an IPv4-mapped address as its IPv4 one, an IPv6 address
	// by its /64). Each credential that fails counts: a well-formed
	// session token with no live session sent without a frontend token
	// (beside one, it is the stale cookie of a device signing in again),
	// and a frontend token that is malformed or newly rejected upstream (a
	// repeat of a recent rejection, or the token of a signed-out session,
	// does not). A client may fail GuessBurst times, then once per
	// GuessInterval; past that it is limited, which costs it only what
	// its failures cost us:
	//
	//   - its session tokens are still looked up (one store read, as for
	//     anyone): a live session is served; a dead cookie gets 429
	//     rate_limited with Retry-After and is cleared; a dead session
	//     header gets its usual answer (nothing can clear it, and its
	//     client must learn to sign in again);
	//   - its frontend tokens still find their existing sessions (one
	//     store read); a new one is validated upstream in turn, one at a
	//     time per client, first come first served, its request waiting at
	//     most ExchangeTimeout for its turn (then 429, not counted as a
	//     provider failure). A flood of bad tokens thus keeps one upstream
	//     call busy, and a valid token from the same address (a colleague
	//     behind one NAT) is validated in its turn rather than refused;
	//     under a flood longer than ExchangeTimeout's worth of
	//     validations, it may get 429 and should retry after Retry-After.
	//
	// Requests without credentials and live sessions are never refused. A lockout is logged once (WARN, with the address or /64),
	// not once per 429. Default 20 and 3 s; a negative GuessBurst turns
	// the limit off. The count is per process and tracks at most 100,000
	// addresses (past that, new ones are not limited: it fails open).
	// Behind a proxy, set ClientIP, or every client shares one address.
	GuessBurst    int
	GuessInterval time.Duration // see GuessBurst

	// ExchangeTimeout bounds one exchange (validation and minting), which
	// runs detached from any one client so that a client that leaves does
	// not fail the others waiting on the same token; a limited client's
	// wait for its turn (see GuessBurst) has its own ExchangeTimeout, so
	// a request waits at most twice this long, whatever the provider does
	// (one that ignores its context gets 503 then). It bounds likewise
	// each sign-out or revocation (listing and ending), which runs
	// detached from its client so that a client that disconnects does not
	// undo it. Default 10 s.
	ExchangeTimeout time.Duration

	// RetryAfter is the Retry-After sent with a 503 when the upstream did
	// not suggest one. Default 5 s.
	RetryAfter time.Duration

	// CrossOrigin rejects cross-origin unsafe requests (POST, DELETE...)
	// that authenticate with a cookie. Default
	// http.NewCrossOriginProtection(): browsers' Sec-Fetch-Site and Origin
	// headers decide; requests without them (non-browser clients) pass.
	CrossOrigin *http.CrossOriginProtection

	// ClientIP returns the client's address: recorded in a session for
	// display, and the key of the guess limit (GuessBurst); it never
	// decides who a request is. Default: the host of r.RemoteAddr. Behind
	// a proxy, supply one that trusts only your proxy's header.
	ClientIP func(r *http.Request) string

	// Logger receives the middleware's events (see Event): session
	// minted, reused (debug), ended, validation failed, upstream or store
	// unavailable (at most once a second), a client rate limited (once
	// per lockout); and a recovered panic. Lines carry public session ids
	// and user ids, never a token, a cookie or a secret. Default
	// slog.Default().
	Logger *slog.Logger

	// Observer receives every Event, synchronously: it must be fast (see
	// Observer). Combine several with Observers. Default none: the events
	// still feed Logger and Metrics.
	Observer Observer

	// Now is the clock that decides session expiry, cookie lifetimes and
	// recent sign-ins. Default time.Now. A memory store (store.NewMemory)
	// has one clock: the first middleware or Revoker built on it gives
	// it its Now (or time.Now), and every one built on the store reads
	// the store's (a Now of its own that differs is not used, and is
	// logged); a store of yours that embeds one (store.Store) shares
	// its clock the same way. Redis judges expiry by its own clock: with
	// it, Now must read the wall clock. A steady request reads it once
	// (twice through a store of yours: the engine calls its Lookup,
	// which it may override, and the memory store reads the clock again).
	Now func() time.Time
}

// Cookie names and shapes the session cookie, which is always HttpOnly,
// and Secure unless Config.InsecureCookie. The zero value is the default.
type Cookie struct {
	// Name is the cookie's name. Default DefaultCookieName,
	// "__Host-session", where browsers accept a __Host- cookie (Secure,
	// Path /, no Domain), so that no sibling subdomain or plain-http page
	// can plant a session cookie; it becomes "__Secure-session" when
	// Domain is set or Path is not "/", and plain "session" with
	// InsecureCookie.
	Name string
	// Domain is the cookie's Domain attribute. Default none: this host
	// only.
	Domain string
	// Path is the cookie's Path attribute. Default "/".
	Path string
	// SameSite is the cookie's SameSite attribute. Default
	// http.SameSiteLaxMode.
	SameSite http.SameSite
	// SessionOnly makes the cookie a browser-session cookie (no Max-Age),
	// dropped when the browser closes. Default false: it persists for
	// the session's remaining life.
	SessionOnly bool
}

// DefaultCookieName is the session cookie's default name (see Cookie.Name).
const DefaultCookieName = "__Host-session"

const (
	defaultLifetime         = 24 * time.Hour
	defaultNegativeCacheTTL = 30 * time.Second
	defaultExchangeTimeout  = 10 * time.Second
	defaultRetryAfter       = 5 * time.Second
	defaultGuessBurst       = 20
	defaultGuessInterval    = 3 * time.Second
)

// withDefaults returns a copy of c with every unset field filled.
func (c Config) withDefaults() Config {
	if c.Store == nil {
		c.Store = store.NewMemory()
	}
	if c.Lifetime <= 0 {
		c.Lifetime = defaultLifetime
	}
	if c.Cookie.Path == "" {
		c.Cookie.Path = "/"
	}
	if c.Cookie.SameSite == 0 {
		c.Cookie.SameSite = http.SameSiteLaxMode
	}
	if c.TokenHeader == "" {
		c.TokenHeader = "Authorization"
	}
	if c.SessionHeader == "" {
		c.SessionHeader = "X-Session-Token"
	}
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.KeepAliveInterval <= 0 {
		c.KeepAliveInterval = time.Minute
	}
	if c.IdleTimeout > 0 && c.KeepAliveInterval > c.IdleTimeout/2 {
		c.KeepAliveInterval = c.IdleTimeout / 2
	}
	if c.NegativeCacheTTL == 0 {
		c.NegativeCacheTTL = defaultNegativeCacheTTL
	}
	if c.GuessBurst == 0 {
		c.GuessBurst = defaultGuessBurst
	}
	if c.GuessInterval <= 0 {
		c.GuessInterval = defaultGuessInterval
	}
	if c.ExchangeTimeout <= 0 {
		c.ExchangeTimeout = defaultExchangeTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = defaultRetryAfter
	}
	if c.CrossOrigin == nil {
		c.CrossOrigin = http.NewCrossOriginProtection()
	}
	if c.ClientIP == nil {
		c.ClientIP = remoteIP
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
