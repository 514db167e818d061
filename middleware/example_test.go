package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// Example mounts the middleware on a chi router, protects a route and
// reads the user in the handler. The frontend sends the provider's token
// once; the session cookie carries every later request.
func Example() {
	upstream := providertest.NewPlurality() // stands in for app.plurality.network
	defer upstream.Close()

	auth := middleware.New(middleware.Config{
		Store: store.NewMemory(), // or redisstore.New(pool, redisstore.Options{})
		Provider: plurality.New(plurality.Config{
			BaseURL:      upstream.URL, // leave empty for Plurality's production API
			ClientID:     upstream.ClientID,
			ClientSecret: provider.Secret(upstream.ClientSecret),
		}),
		Secret: "a shared secret of at least 16 bytes",
	})

	r := chi.NewRouter()
	r.Use(auth.Handler)
	r.With(auth.RequireSession).Get("/api/me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := middleware.UserFrom(r.Context())
		fmt.Fprintf(w, "hello %s from %s", user.UserID, user.Provider)
	})
	srv := httptest.NewTLSServer(r)
	defer srv.Close()

	// First request: the frontend token, validated upstream once.
	first, _ := http.NewRequest("GET", srv.URL+"/api/me", nil)
	first.Header.Set("Authorization", "Bearer "+upstream.Issue("alice", time.Hour))
	res, _ := srv.Client().Do(first)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	// Later requests: the session cookie only.
	later, _ := http.NewRequest("GET", srv.URL+"/api/me", nil)
	later.AddCookie(res.Cookies()[0])
	res, _ = srv.Client().Do(later)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()

	fmt.Println(res.StatusCode, string(body))
	fmt.Println("upstream calls:", upstream.Calls())
	// Output:
	// 200 hello alice from plurality
	// upstream calls: 1
}

// ExampleAuth_RequireSession protects one route without mounting the
// middleware globally: RequireSession runs it when needed.
func ExampleAuth_RequireSession() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	auth := middleware.New(middleware.Config{
		Store:    store.NewMemory(),
		Provider: plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:   "a shared secret of at least 16 bytes",
	})
	me := auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := middleware.UserFrom(r.Context())
		fmt.Fprint(w, user.UserID)
	}))

	w := httptest.NewRecorder()
	me.ServeHTTP(w, httptest.NewRequest("GET", "/api/me", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))

	w = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+upstream.Issue("bob", time.Hour))
	me.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 401 Bearer
	// 200 bob
}

// ExampleAuth_Routes mounts the session routes: POST /auth/session
// exchanges a frontend token explicitly, GET /auth/session shows the
// current session.
func ExampleAuth_Routes() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	auth := middleware.New(middleware.Config{
		Store:    store.NewMemory(),
		Provider: plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:   "a shared secret of at least 16 bytes",
	})
	r := chi.NewRouter()
	r.Mount("/auth", auth.Routes("/auth"))

	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+upstream.Issue("carol", time.Hour))
	r.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("X-Session-Token") != "")
	// Output: 201 true
}

// ExampleNewRevoker ends a user's sessions from a backend job (an account
// deletion) that serves no requests: it shares the web app's store and
// secret, and needs no provider.
func ExampleNewRevoker() {
	upstream := providertest.NewPlurality()
	defer upstream.Close()
	st := store.NewMemory() // in production, both processes use redisstore.New on one Redis
	const secret = "a shared secret of at least 16 bytes"
	web := middleware.New(middleware.Config{
		Store:    st,
		Provider: plurality.New(plurality.Config{BaseURL: upstream.URL, ClientID: upstream.ClientID, ClientSecret: provider.Secret(upstream.ClientSecret)}),
		Secret:   secret,
	})
	signIn := httptest.NewRequest("POST", "/auth/session", nil)
	signIn.Header.Set("Authorization", "Bearer "+upstream.Issue("dora", time.Hour))
	web.Routes("/auth").ServeHTTP(httptest.NewRecorder(), signIn)

	job := middleware.NewRevoker(middleware.Config{Store: st, Secret: secret})
	n, err := job.RevokeUser(context.Background(), "plurality", "dora")
	fmt.Println(n, err)
	// Output: 1 <nil>
}
