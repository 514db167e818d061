// Package middleware turns a frontend identity token into a server-side
// session and the session into a user in the request context.
//
// A browser signs in through an identity provider's widget and the
// frontend sends the provider's token once, as Authorization: Bearer. The
// middleware validates it once with the provider, mints a session in a
// store (memory or Redis, see packages store and store/redisstore), sets the
// session cookie (and the X-Session-Token header for non-browser clients),
// and every later request reuses the session: one store read, no upstream
// call, no write.
//
//	auth := middleware.New(middleware.Config{
//		Store:    store.NewMemory(), // or redisstore.New(pool, redisstore.Options{})
//		Provider: p,
//		Secret:   secret, // shared by every process on one store
//	})
//	r := chi.NewRouter()
//	r.Use(auth.Handler)                            // mount
//	r.With(auth.RequireSession).Get("/api/me", me) // protect
//	user, ok := middleware.UserFrom(r.Context())   // read, in a handler
//
// Errors are JSON, {"error": code, "message": text}: 401 with
// WWW-Authenticate: Bearer when a protected route has no session; 401
// invalid_token for a malformed, rejected, expired or signed-out frontend
// token; 503 provider_unavailable or session_store_unavailable with
// Retry-After; 403 cross_origin_request for a cross-origin unsafe request
// authenticated by a cookie; 429 rate_limited with Retry-After for a client
// whose credentials keep failing (Config.GuessBurst). Nothing a client
// sends causes a 500.
//
// Handlers keep their own values in the session through scs's API on the
// manager the middleware builds (Auth.Values). Backend jobs list and end
// sessions with a Revoker.
//
// Every outcome is one Event (a sign-in with its device, a session ended
// and why, a refusal and why, a provider call and its duration...),
// handed to Config.Observer; the log and Auth.Metrics are made from the
// same events, and the module otelsessiongate turns them into
// OpenTelemetry metrics and spans.
//
// Tokens never reach the store, a log, an event or an error. A session token is a
// split token: its selector, the store key, is an HMAC of the
// frontend token under Config.Secret, so a client that resends only its
// frontend token finds its session with one read; its validator is an
// HMAC of the frontend token and a nonce drawn at each mint, and the store
// keeps only its SHA-256 hash. A copy of the store opens no session.
package middleware
