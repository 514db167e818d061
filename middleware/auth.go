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
	negative   *negativeCache
	records    *recordCache
	guesses    *guessLimiter
	counters   counters
	flights    singleflight.Group
}

// New returns the middleware for cfg. It copies cfg and fills its defaults;
// later changes to cfg have no effect.
//
// New panics if cfg.Sessions or cfg.Provider is nil, if the manager's
// Store is not a store.Store, if its HashTokenInStore is true (the store
// keeps no token: it splits each one, see store.Token), if its IdleTimeout is set (scs would write on every
// request), if the cookie is named __Host-... but cannot be one (Domain
// set, Path not "/", or InsecureCookie), or if cfg.Secret is shorter than
// 16 bytes.
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
	if c := cfg.Sessions.Cookie; strings.HasPrefix(c.Name, "__Host-") && (cfg.InsecureCookie || c.Domain != "" || c.Path != "/") {
		panic("sessiongate/middleware: a __Host- cookie must be Secure, have Path / and no Domain")
	}
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
		cfg:        cfg,
		sm:         cfg.Sessions,
		store:      st,
		secret:     secret,
		bearer:     http.CanonicalHeaderKey(cfg.TokenHeader) == "Authorization",
		cookieName: cfg.Sessions.Cookie.Name,
		negative:   newNegativeCache(cfg.NegativeCacheTTL, cfg.Now),
		records:    newRecordCache(),
		guesses:    newGuessLimiter(cfg.GuessBurst, cfg.GuessInterval, cfg.Now),
	}
}
