package main

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/para"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
)

//go:embed web
var webFiles embed.FS

// app is the example: its router, the router of its metrics listener,
// and what must be closed with them.
type app struct {
	handler http.Handler
	metrics http.Handler // GET /metrics, for METRICS_ADDR
	admin   http.Handler // the back-office API, for ADMIN_ADDR; nil without ADMIN_TOKEN
	closers []func()
}

func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires the store, the provider and the routes of DESIGN.md.
func newApp(cfg config, log *slog.Logger) (*app, error) {
	a := &app{}
	st, err := openStore(cfg, a)
	if err != nil {
		return nil, err
	}
	p, dev := newProvider(cfg, a, log)
	if cfg.SecretWasDefault {
		log.Warn("SESSION_SECRET is unset: using a random one. Sessions will not survive a restart or be shared with other processes.")
	}
	tel, err := newTelemetry()
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closers = append(a.closers, tel.Close)
	feed := newSignInFeed(log)

	auth := middleware.New(middleware.Config{
		Store:              st,
		Lifetime:           cfg.Lifetime,
		Provider:           p,
		Secret:             cfg.Secret, // empty: the middleware draws one for this process alone
		InsecureCookie:     !cfg.CookieSecure,
		IdleTimeout:        cfg.IdleTimeout,
		MaxSessionsPerUser: cfg.MaxPerUser,
		Logger:             log, // the middleware logs sign-ins and sessions ended (INFO)
		Observer:           middleware.Observers(tel.observer, feed),
	})
	if err := startupCheck(auth, log); err != nil {
		a.Close()
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(auth.Handler)
	r.Get("/healthz", healthz(auth))
	r.With(auth.RequireSession).Get("/api/me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := middleware.UserFrom(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{"user": map[string]string{"id": user.UserID, "provider": user.Provider}})
	})
	routes := auth.Routes("/auth")
	if cfg.StepUpMaxAge > 0 {
		// Signing out every device, or every other one, needs a recent
		// sign-in: a stale session gets RFC 9470's challenge, and the page
		// retries with a fresh token.
		stepUp := auth.RequireRecentAuth(cfg.StepUpMaxAge)
		r.With(stepUp).Delete("/auth/sessions", routes.ServeHTTP)
		r.With(stepUp).Delete("/auth/sessions/others", routes.ServeHTTP)
	}
	r.With(auth.RequireSession).Get("/api/sign-ins", feed.handler)
	r.Mount("/auth", routes)
	if dev != nil {
		r.Post("/dev/token", devToken(dev))
	}
	web, _ := fs.Sub(webFiles, "web")
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, web, "index.html")
	})
	a.handler = r
	if cfg.AdminToken != "" {
		a.admin = auth.AdminRoutes("", adminKey(cfg.AdminToken))
	}
	metrics := http.NewServeMux()
	metrics.Handle("GET /metrics", tel.handler)
	a.metrics = metrics
	return a, nil
}

// newProvider builds the provider PROVIDER names: the loopback dev fake,
// one upstream, or several behind a provider.Multi that routes Plurality
// tokens by their uniqueSessionId claim, Para JWTs by their aud, and
// everything else to Para's verification endpoint when it is configured.
func newProvider(cfg config, a *app, log *slog.Logger) (provider.Provider, *providertest.Plurality) {
	if cfg.Providers[0] == "dev" {
		dev := providertest.NewPlurality()
		a.closers = append(a.closers, dev.Close)
		log.Info("dev provider: a Plurality-format fake runs on loopback; get tokens from POST /dev/token?user=NAME", "upstream", dev.URL)
		return plurality.New(plurality.Config{BaseURL: dev.URL, ClientID: dev.ClientID, ClientSecret: provider.Secret(dev.ClientSecret)}), dev
	}
	var routes []provider.Route
	for _, name := range cfg.Providers {
		switch name {
		case "plurality":
			routes = append(routes, provider.Route{
				Match:    provider.ClaimMatches("uniqueSessionId"),
				Provider: plurality.New(plurality.Config{BaseURL: cfg.PluralityURL, ClientID: cfg.PluralityID, ClientSecret: cfg.PluralitySecret}),
			})
		case "parajwt":
			routes = append(routes, provider.Route{
				Match:    provider.ClaimMatches("aud", cfg.ParaJWTAudience),
				Provider: para.NewJWT(para.Config{BaseURL: cfg.ParaURL, APIKeyID: cfg.ParaJWTAudience}),
			})
		case "para":
			routes = append(routes, provider.Route{Provider: para.New(para.Config{BaseURL: cfg.ParaURL, SecretAPIKey: cfg.ParaSecretKey})})
		}
		log.Info("provider configured", "provider", name)
	}
	if len(routes) == 1 {
		return routes[0].Provider, nil
	}
	return provider.NewMulti(routes...), nil
}

// startupCheck runs the store's checks once before the app serves. A
// SESSION_SECRET that differs from the one of the other processes on the
// same Redis stops the app: each would mint its own session for one
// token, and a sign-out in one would not stop the other. Any other
// problem is logged and left to /healthz, since Redis may still be
// starting or failing over.
func startupCheck(auth *middleware.Auth, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := auth.Check(ctx)
	switch {
	case errors.Is(err, store.ErrSecretMismatch):
		return errors.New("SESSION_SECRET is not the secret of the other processes on this Redis: " +
			"every process that shares a Redis must have the same SESSION_SECRET " +
			"(to change it, stop them all, delete the key sg:fingerprint, and start them with the new one)")
	case err != nil:
		log.Error("the session store cannot keep sessions yet; /healthz says why until it can", "error", err)
	}
	return nil
}

// healthz is GET /healthz: 200 {"status": "ok"} when the store can do
// what sign-in and sign-out need (Auth.Check), else 503 {"status":
// "unavailable", "reason": ...}; the reason holds no secret.
func healthz(auth *middleware.Auth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := auth.Check(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func openStore(cfg config, a *app) (store.Store, error) {
	if cfg.Store == "memory" {
		return store.NewMemory(), nil
	}
	tlsConfig, err := cfg.redisTLS()
	if err != nil {
		return nil, err
	}
	// A single Redis, a Sentinel set or a Cluster, as REDIS_URL says. A
	// store that cannot keep sessions yet (Redis unreachable or not what
	// the URL says) comes with the reason: the start-up check logs it and
	// /healthz says it until it is fixed.
	st, err := redisstore.Open(cfg.RedisURL, redisstore.Options{TLS: tlsConfig})
	if st == nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { st.(io.Closer).Close() })
	return st, nil
}

// adminKey is the back-office API's authorize: Authorization: Bearer
// ADMIN_TOKEN, compared in constant time; no header is 401, another key
// 403.
func adminKey(token provider.Secret) func(*http.Request) error {
	want := []byte(token)
	return func(r *http.Request) error {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return middleware.ErrUnauthenticated
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			return errors.New("wrong ADMIN_TOKEN")
		}
		return nil
	}
}

var userName = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// devToken is POST /dev/token?user=NAME: a token from the dev upstream, as
// a provider's sign-in widget would hand one to the frontend.
func devToken(dev *providertest.Plurality) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if !userName.MatchString(user) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "user: 1 to 64 letters, digits or ._@-"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": dev.Issue(user, time.Hour)})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
