package middleware

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/engine"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/internal/guesslimit"
	"github.com/sessiongate/sessiongate/provider"
)

// Auth is sessiongate's middleware: it turns frontend tokens into sessions
// and sessions into users in the request context. Build it with New; it is
// safe for concurrent use.
type Auth struct {
	cfg    Config
	engine *engine.Engine
	bearer bool
	// cookieName is the session cookie's name, adapted (see Cookie.Name).
	cookieName string
	// sessionHeader is cfg.SessionHeader in canonical form, to read
	// every value of it.
	sessionHeader string
	// tokenHeader is cfg.TokenHeader in canonical form, likewise.
	tokenHeader string
	// vary is what a response that sets or clears the session varies on.
	vary     []string
	guesses  *guesslimit.Limiter
	counters counters // Metrics's, counted from the events
	// providerName names the provider in the events the middleware
	// emits itself.
	providerName string
}

// New returns the middleware for cfg. It copies cfg and fills its defaults;
// later changes to cfg have no effect.
//
// New panics if cfg.Provider is nil or its Name holds a ':'
// (provider.Provider.Name), if cfg.Secret is shorter than 16
// bytes, if Cookie.Name is not a cookie name (net/http would never send
// it), or if browsers would drop the cookie: a Cookie.Name starting
// __Host- (other than the default, which New adapts) when the cookie is
// not Secure (InsecureCookie) or has a Domain or a Path other than "/", a
// name starting __Secure- with InsecureCookie, or SameSite=None with
// InsecureCookie (prefixes are matched regardless of case, as browsers
// do).
func New(cfg Config) *Auth {
	noStore, ownNow := cfg.Store == nil, cfg.Now != nil
	cfg = cfg.withDefaults()
	if cfg.Provider == nil {
		panic("sessiongate/middleware: Config.Provider is required")
	}
	if strings.Contains(cfg.Provider.Name(), ":") {
		panic(fmt.Sprintf("sessiongate/middleware: Config.Provider's name %q holds a ':', which separates it from user ids in the store", cfg.Provider.Name()))
	}
	checkSecret(cfg.Secret)
	cookieName := sessionCookieName(cfg.Cookie, cfg.InsecureCookie)
	// Every check that panics is done: only a middleware that is built
	// gives a memory store its clock.
	cfg.Now = storeClock(cfg, ownNow)
	if noStore {
		cfg.Logger.Warn("sessiongate: no Config.Store given; using a memory store, right only for a single process.")
	}
	a := &Auth{
		cfg:           cfg,
		bearer:        http.CanonicalHeaderKey(cfg.TokenHeader) == "Authorization",
		cookieName:    cookieName,
		sessionHeader: http.CanonicalHeaderKey(cfg.SessionHeader),
		tokenHeader:   http.CanonicalHeaderKey(cfg.TokenHeader),
		vary:          varyOn(cfg.TokenHeader),
		guesses:       guesslimit.New(cfg.GuessBurst, cfg.GuessInterval, cfg.Now),
	}
	a.providerName = cfg.Provider.Name()
	a.engine = newEngine(cfg, &a.counters)
	// The engine keeps the secret. fmt prints an unexported field's
	// value without its String method, so a printed *Auth would show it.
	a.cfg.Secret = ""
	return a
}

// storeClock returns the clock cfg's middleware or Revoker reads, cfg's
// defaults filled (ownNow: Config.Now was set): a memory store's one
// clock (backend.Clocked), which the first one built on it gives it (its
// Now, or time.Now), so that every engine and middleware on one store
// judges expiry, cookie lifetimes and recent sign-ins at one clock;
// cfg.Now otherwise. A Now set that the store did not take is logged
// (unless both are time.Now) and not used.
func storeClock(cfg Config, ownNow bool) func() time.Time {
	clock := backend.WallClock(cfg.Now)
	took := backend.UseClock(cfg.Store, clock)
	c, ok := backend.ClockOf(cfg.Store)
	if !ok {
		return cfg.Now
	}
	if !took && ownNow && !(clock.Wall && c.Wall) {
		cfg.Logger.Warn(msgClockNotUsed)
	}
	return c.Now
}

// msgClockNotUsed is logged by a middleware or Revoker whose Config.Now a
// memory store did not take.
const msgClockNotUsed = "sessiongate: the memory store already follows the clock of the first middleware or Revoker built on it; this one's Config.Now is not used"

// checkSecret panics if secret is set and shorter than 16 bytes.
func checkSecret(secret provider.Secret) {
	if secret != "" && len(secret) < 16 {
		panic("sessiongate/middleware: Config.Secret must be at least 16 bytes")
	}
}

// newEngine returns the session engine for cfg, whose defaults are
// filled and its secret checked (checkSecret), its events counted in
// counts (when not nil), logged and handed to cfg.Observer.
func newEngine(cfg Config, counts *counters) *engine.Engine {
	secret := []byte(cfg.Secret)
	if len(secret) == 0 { // checkSecret refused a short one
		secret = make([]byte, 32)
		rand.Read(secret)
		cfg.Logger.Warn("sessiongate: no Config.Secret given; using a random one. Sessions will not be found by other processes or after a restart.")
	}
	return engine.New(engine.Config{
		Store:             cfg.Store,
		Provider:          cfg.Provider,
		Secret:            format.NewSecret(secret),
		Random:            len(cfg.Secret) == 0,
		Lifetime:          cfg.Lifetime,
		IdleTimeout:       cfg.IdleTimeout,
		KeepAliveInterval: cfg.KeepAliveInterval,
		MaxSessions:       max(cfg.MaxSessionsPerUser, 0),
		NegativeCacheTTL:  cfg.NegativeCacheTTL,
		ExchangeTimeout:   cfg.ExchangeTimeout,
		Turn:              guesslimit.Turn,
		Observer:          newHook(cfg, counts),
		Logger:            cfg.Logger,
		Now:               cfg.Now,
	})
}

// Values returns the scs session manager that holds the handlers' own
// values in each session: call its Get, Put, Remove, Keys... with the
// request's context in any handler behind Handler. sessiongate commits
// what a handler put after it returns when the request has a session,
// and drops it when the request has none. Its Destroy, RenewToken,
// Iterate and MergeSession return store.ErrUnsupported and change nothing
// (sign out with SignOut, list with Sessions); on a request without a
// session, where nothing is ever saved, RenewToken returns nil. The
// manager is the Auth's own: do not change its fields.
func (a *Auth) Values() *scs.SessionManager { return a.engine.Values() }

// sessionCookieName returns the name of the session cookie shaped by c,
// Secure unless insecure, as Cookie.Name documents; it panics for a
// cookie that browsers would drop.
func sessionCookieName(c Cookie, insecure bool) string {
	name := c.Name
	if name == "" || name == DefaultCookieName {
		switch {
		case insecure:
			name = strings.TrimPrefix(DefaultCookieName, "__Host-")
		case c.Domain != "" || c.Path != "/":
			name = "__Secure-" + strings.TrimPrefix(DefaultCookieName, "__Host-")
		default:
			name = DefaultCookieName
		}
	}
	if err := (&http.Cookie{Name: name, Value: "v"}).Valid(); err != nil {
		panic("sessiongate/middleware: Cookie.Name is not a cookie name net/http will send (a token of RFC 6265: no spaces, separators or control characters)")
	}
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "__host-") && (insecure || c.Domain != "" || c.Path != "/"):
		panic("sessiongate/middleware: a __Host- cookie must be Secure, have Path / and no Domain")
	case strings.HasPrefix(lower, "__secure-") && insecure:
		panic("sessiongate/middleware: a __Secure- cookie must be Secure: browsers drop it under InsecureCookie")
	case c.SameSite == http.SameSiteNoneMode && insecure:
		panic("sessiongate/middleware: a SameSite=None cookie must be Secure: browsers drop it under InsecureCookie")
	}
	return name
}

// varyOn returns the request headers a response that sets or clears the
// session depends on: Cookie, Authorization, and tokenHeader if another.
func varyOn(tokenHeader string) []string {
	vary := []string{"Cookie", "Authorization"}
	if h := http.CanonicalHeaderKey(tokenHeader); h != "Authorization" {
		vary = append(vary, h)
	}
	return vary
}
