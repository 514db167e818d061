package middleware

import (
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/sync/singleflight"

	"github.com/sessiongate/sessiongate/store"
)

// Auth is sessiongate's middleware: it turns frontend tokens into sessions
// and sessions into users in the request context. Build it with New; it is
// safe for concurrent use.
type Auth struct {
	cfg        Config
	sm         *scs.SessionManager
	store      store.Store
	secret     []byte
	bearer     bool
	cookieName string
	// sessionHeader is cfg.SessionHeader in canonical form, to read
	// every value of it.
	sessionHeader string
	// vary is what a response that sets or clears the session varies on.
	vary     []string
	negative *negativeCache
	records  *recordCache
	guesses  *guessLimiter
	counters counters
	flights  singleflight.Group
	// storeDownLog and providerDownLog keep an outage from writing a log
	// line per request.
	storeDownLog, providerDownLog everySecond
}

// New returns the middleware for cfg. It copies cfg and fills its defaults;
// later changes to cfg have no effect.
//
// The session cookie is named by cfg.Sessions.Cookie.Name. NewManager's
// default, store.DefaultCookieName ("__Host-session"), is kept where
// browsers accept a __Host- cookie (Secure, Path /, no Domain), so that
// no sibling subdomain or plain-http page can plant a session cookie; it
// becomes "__Secure-session" when Domain is set or Path is not "/", and
// plain "session" with InsecureCookie.
//
// New panics if cfg.Sessions or cfg.Provider is nil, if the manager's
// Store is not a store.Store, if its HashTokenInStore is true (the store
// keeps no token: it splits each one, see store.Token), if its IdleTimeout
// is set (scs would write on every request), if cfg.Secret is shorter
// than 16 bytes, or if browsers would drop the cookie: any other name
// starting __Host- when the cookie is not Secure (InsecureCookie) or has a
// Domain or a Path other than "/", a name starting __Secure- with
// InsecureCookie, or SameSite=None with InsecureCookie (prefixes are
// matched regardless of case, as browsers do).
func New(cfg Config) *Auth {
	cfg = cfg.withDefaults()
	if cfg.Sessions == nil {
		panic("sessiongate/middleware: Config.Sessions is required")
	}
	if cfg.Provider == nil {
		panic("sessiongate/middleware: Config.Provider is required")
	}
	st, ok := cfg.Sessions.Store.(store.Store)
	if !ok {
		panic("sessiongate/middleware: Config.Sessions.Store must be a store.Store (store.NewMemory, store.NewRedis); use store.NewManager")
	}
	if cfg.Sessions.HashTokenInStore {
		panic("sessiongate/middleware: Config.Sessions.HashTokenInStore must be false: the store splits tokens itself; use store.NewManager")
	}
	cookieName := sessionCookieName(cfg.Sessions.Cookie, cfg.InsecureCookie)
	if cfg.Sessions.IdleTimeout != 0 {
		panic("sessiongate/middleware: Config.Sessions.IdleTimeout must be 0: scs would write the session on every request")
	}
	secret := []byte(cfg.Secret)
	switch {
	case len(secret) == 0:
		secret = make([]byte, 32)
		rand.Read(secret)
		cfg.Logger.Warn("sessiongate: no Config.Secret given; using a random one. Sessions will not be found by other processes or after a restart.")
	case len(secret) < 16:
		panic("sessiongate/middleware: Config.Secret must be at least 16 bytes")
	}
	return &Auth{
		cfg:           cfg,
		sm:            cfg.Sessions,
		store:         st,
		secret:        secret,
		bearer:        http.CanonicalHeaderKey(cfg.TokenHeader) == "Authorization",
		cookieName:    cookieName,
		sessionHeader: http.CanonicalHeaderKey(cfg.SessionHeader),
		vary:          varyOn(cfg.TokenHeader),
		negative:      newNegativeCache(cfg.NegativeCacheTTL, cfg.Now),
		records:       newRecordCache(),
		guesses:       newGuessLimiter(cfg.GuessBurst, cfg.GuessInterval, cfg.Now),
	}
}

// sessionCookieName returns the name of the session cookie shaped by c,
// Secure unless insecure, as New documents; it panics for a cookie that
// browsers would drop.
func sessionCookieName(c scs.SessionCookie, insecure bool) string {
	name := c.Name
	if name == store.DefaultCookieName {
		switch {
		case insecure:
			name = strings.TrimPrefix(name, "__Host-")
		case c.Domain != "" || c.Path != "/":
			name = "__Secure-" + strings.TrimPrefix(name, "__Host-")
		}
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
