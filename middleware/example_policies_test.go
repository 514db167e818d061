package middleware_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// ExampleAuth_RequireRecentAuth protects signing out every device with
// step-up authentication: a session whose sign-in is older than 15
// minutes gets RFC 9470's challenge, and the retry with a fresh frontend
// token (sent with the session) passes, on the same session.
func ExampleAuth_RequireRecentAuth() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	var skew atomic.Int64 // the example's clock runs ahead on demand
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	upstream.Now = now // the widget's tokens are issued on the same clock
	auth := middleware.New(middleware.Config{
		Store:    store.NewMemory(),
		Provider: plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:   "a shared secret of at least 16 bytes",
		Logger:   slog.New(slog.DiscardHandler),
		Now:      now,
	})
	routes := auth.Routes("/auth")
	r := chi.NewRouter()
	r.Use(auth.Handler)
	r.With(auth.RequireRecentAuth(15*time.Minute)).Delete("/auth/sessions", routes.ServeHTTP)
	r.Mount("/auth", routes)
	srv := httptest.NewTLSServer(r)
	defer srv.Close()

	send := func(method, path string, session *http.Cookie, token string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if session != nil {
			req.AddCookie(session)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, _ := srv.Client().Do(req)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := send("POST", "/auth/session", nil, upstream.Issue("alice", 2*time.Hour))
	session := res.Cookies()[0]

	skew.Store(int64(time.Hour)) // an hour later
	res = send("DELETE", "/auth/sessions", session, "")
	fmt.Println(res.StatusCode, res.Header.Get("WWW-Authenticate"))

	// The frontend asks its widget for a fresh token and retries.
	res = send("DELETE", "/auth/sessions", session, upstream.Issue("alice", 2*time.Hour))
	fmt.Println(res.StatusCode)
	// Output:
	// 401 Bearer error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=900
	// 204
}

// ExampleConfig_maxSessionsPerUser lets each user have two devices: the
// third sign-in ends the least recently used session.
func ExampleConfig_maxSessionsPerUser() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	auth := middleware.New(middleware.Config{
		Store:              store.NewMemory(),
		Provider:           plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:             "a shared secret of at least 16 bytes",
		MaxSessionsPerUser: 2,
		Logger:             slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewTLSServer(auth.Routes("/auth"))
	defer srv.Close()

	var first *http.Cookie
	for i := range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/auth/session", nil)
		req.Header.Set("Authorization", "Bearer "+upstream.Issue("alice", time.Hour))
		res, _ := srv.Client().Do(req)
		res.Body.Close()
		if i == 0 {
			first = res.Cookies()[0]
		}
		time.Sleep(2 * time.Millisecond) // distinct sign-in times
	}
	sessions, _ := auth.Sessions(context.Background(), "plurality", "alice")
	fmt.Println("live sessions:", len(sessions))

	req, _ := http.NewRequest("GET", srv.URL+"/auth/session", nil)
	req.AddCookie(first)
	res, _ := srv.Client().Do(req)
	res.Body.Close()
	fmt.Println("the first device:", res.StatusCode)
	// Output:
	// live sessions: 2
	// the first device: 401
}

// ExampleAuth_AdminRoutes serves the back-office API on an internal
// listener, behind a static bearer key compared in constant time.
func ExampleAuth_AdminRoutes() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	auth := middleware.New(middleware.Config{
		Store:    store.NewMemory(),
		Provider: plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:   "a shared secret of at least 16 bytes",
		Logger:   slog.New(slog.DiscardHandler),
	})
	adminToken := []byte("a long random key from the environment")
	admin := httptest.NewServer(auth.AdminRoutes("", func(r *http.Request) error {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return middleware.ErrUnauthenticated // 401
		}
		if subtle.ConstantTimeCompare([]byte(key), adminToken) != 1 {
			return errors.New("wrong key") // 403
		}
		return nil
	}))
	defer admin.Close()

	public := httptest.NewTLSServer(auth.Routes("/auth"))
	defer public.Close()
	req, _ := http.NewRequest("POST", public.URL+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+upstream.Issue("alice", time.Hour))
	res, _ := public.Client().Do(req)
	res.Body.Close()

	call := func(method, path, key string) {
		req, _ := http.NewRequest(method, admin.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, _ := http.DefaultClient.Do(req)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(method, path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	call("DELETE", "/users/plurality/alice/sessions", "")
	call("DELETE", "/users/plurality/alice/sessions", "guess")
	call("DELETE", "/users/plurality/alice/sessions", string(adminToken))
	call("GET", "/users/plurality/alice/sessions", string(adminToken))
	// Output:
	// DELETE /users/plurality/alice/sessions 401 {"error":"unauthorized","message":"authenticate to use the back-office API"}
	// DELETE /users/plurality/alice/sessions 403 {"error":"forbidden","message":"not allowed"}
	// DELETE /users/plurality/alice/sessions 200 {"ended":1}
	// GET /users/plurality/alice/sessions 200 {"sessions":[]}
}
