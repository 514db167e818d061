package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
	"github.com/sessiongate/sessiongate/store/redisstore"
	"github.com/sessiongate/sessiongate/store/storetest"
)

const testSecret = "test-secret-0123456789abcdef"

// cookieName is the session cookie's name in these tests: the default,
// Secure.
const cookieName = middleware.DefaultCookieName

// testProviderTimeout bounds each upstream call in these tests: generous,
// so that no healthy call is ever cut, even with 200 concurrent TLS
// clients under -race on a busy two-core machine. Tests of a hanging
// upstream cut calls sooner with env.impatient.
const testProviderTimeout = 30 * time.Second

// testStoreTimeout bounds each Redis operation in these tests, for the
// same reason: 200 concurrent requests under -race on a busy machine can
// wait longer than the store's 2 s default for a connection. Tests of a
// stalled Redis set their own.
const testStoreTimeout = 30 * time.Second

// env is one middleware under test: a fake Plurality, a store, the
// middleware on a chi router served over TLS, a clock and captured logs.
type env struct {
	t     testing.TB
	fake  *providertest.Plurality
	auth  *middleware.Auth
	sm    *scs.SessionManager
	store store.Store
	srv   *httptest.Server
	redis *storetest.Server
	clock *clock
	logs  *syncBuffer
	// upstreamDeadline, when set (ns), ends each upstream call after it.
	upstreamDeadline atomic.Int64
	// entered and release hold a request open in /api/hold.
	entered, release chan struct{}
}

// stores runs fn once per store kind.
func stores(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, kind)
		})
	}
}

func newEnv(t testing.TB, kind string, mods ...func(*middleware.Config)) *env {
	t.Helper()
	return newEnvSharing(t, kind, nil, mods...)
}

// newEnvSharing is newEnv for another process of the same deployment as
// other (when not nil): its own middleware, server and clock, other's
// provider and Redis (each when set).
func newEnvSharing(t testing.TB, kind string, other *env, mods ...func(*middleware.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{}, logs: &syncBuffer{}, entered: make(chan struct{}), release: make(chan struct{})}
	if other != nil {
		e.fake, e.redis = other.fake, other.redis
	}
	if e.fake == nil {
		e.fake = providertest.NewPlurality()
		e.fake.Now = e.clock.Now // its tokens' iat and exp on the tests' clock
		t.Cleanup(e.fake.Close)
	}

	var st store.Store = store.NewMemory()
	if kind == "redis" {
		if e.redis == nil {
			e.redis = storetest.Start(t)
		}
		pool, err := redisstore.NewPool(e.redis.URL)
		require.NoError(t, err)
		// Bounded, as a production pool should be: 200 requests at once
		// on a busy machine otherwise dial 200 connections at once, and
		// a dial that waits out NewPool's 2 s connect timeout in the
		// listen backlog fails its request.
		pool.MaxActive = 64
		t.Cleanup(func() { pool.Close() })
		st = redisstore.New(pool, redisstore.Options{Timeout: testStoreTimeout})
	}
	e.store = st
	cfg := middleware.Config{
		Store: st,
		Provider: deadlined{plurality.New(plurality.Config{
			BaseURL: e.fake.URL, ClientID: e.fake.ClientID, ClientSecret: provider.Secret(e.fake.ClientSecret),
			Timeout: testProviderTimeout, Now: e.clock.Now,
		}), &e.upstreamDeadline},
		Secret: testSecret,
		Now:    e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	cfg.ExchangeTimeout = 2 * testProviderTimeout // a healthy exchange is never cut either
	for _, m := range mods {
		m(&cfg)
	}
	e.auth = middleware.New(cfg)
	e.sm = e.auth.Values()

	r := chi.NewRouter()
	r.Use(e.auth.Handler)
	r.Get("/public", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := middleware.UserFrom(r.Context()); ok {
			io.WriteString(w, "hello "+u.UserID)
			return
		}
		io.WriteString(w, "hello anonymous")
	})
	protected := r.With(e.auth.RequireSession)
	protected.Get("/api/me", func(w http.ResponseWriter, r *http.Request) {
		u, _ := middleware.UserFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"user": map[string]string{"id": u.UserID, "provider": u.Provider}})
	})
	protected.Post("/api/note", func(w http.ResponseWriter, r *http.Request) {
		e.sm.Put(r.Context(), "note", r.URL.Query().Get("v"))
		w.WriteHeader(http.StatusNoContent)
	})
	protected.Get("/api/note", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, e.sm.GetString(r.Context(), "note"))
	})
	protected.Post("/api/hold", func(w http.ResponseWriter, r *http.Request) {
		e.entered <- struct{}{}
		<-e.release
		e.sm.Put(r.Context(), "note", "written after the sign-out")
		w.WriteHeader(http.StatusNoContent)
	})
	r.Mount("/auth", e.auth.Routes("/auth"))
	e.srv = httptest.NewTLSServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

// req describes one request.
type req struct {
	method, path string
	bearer       string // Authorization: Bearer
	cookie       string // session cookie value
	header       string // X-Session-Token value
	hdr          map[string]string
	extra        http.Header // set as is, after hdr
	ctx          context.Context
}

// resp is a response read whole.
type resp struct {
	*http.Response
	body string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &m), r.body)
	return m
}

// varyNames returns the header names of r's Vary, each as sent.
func varyNames(r *http.Response) []string {
	var names []string
	for _, v := range r.Header.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return names
}

// sessionCookie returns the session cookie the response set, or nil.
func (r resp) sessionCookie() *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	return nil
}

func (e *env) do(q req) resp {
	e.t.Helper()
	r, err := e.try(q)
	require.NoError(e.t, err)
	return r
}

// tryHeader is try with extra header values, each sent as given (several
// values of one header are sent as several lines).
func (e *env) tryHeader(q req, hdr http.Header) (resp, error) {
	if q.hdr == nil {
		q.hdr = map[string]string{}
	}
	q.extra = hdr
	return e.try(q)
}

func (e *env) try(q req) (resp, error) {
	if q.method == "" {
		q.method = http.MethodGet
	}
	if q.ctx == nil {
		q.ctx = context.Background()
	}
	hr, err := http.NewRequestWithContext(q.ctx, q.method, e.srv.URL+q.path, nil)
	if err != nil {
		return resp{}, err
	}
	if q.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: q.cookie})
	}
	if q.header != "" {
		hr.Header.Set("X-Session-Token", q.header)
	}
	for k, v := range q.hdr {
		hr.Header.Set(k, v)
	}
	for k, v := range q.extra {
		hr.Header[http.CanonicalHeaderKey(k)] = v
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{Response: res, body: string(b)}, err
}

// signInAs is signIn with a User-Agent.
func (e *env) signInAs(user, agent string) (frontend, session string) {
	e.t.Helper()
	frontend = e.fake.Issue(user, time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend, hdr: map[string]string{"User-Agent": agent}})
	require.Equal(e.t, http.StatusCreated, r.StatusCode, r.body)
	return frontend, r.sessionCookie().Value
}

// signInFrom is signIn with extra request headers.
func (e *env) signInFrom(user string, hdr map[string]string) (frontend, session string) {
	e.t.Helper()
	frontend = e.fake.Issue(user, time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend, hdr: hdr})
	require.Equal(e.t, http.StatusCreated, r.StatusCode, r.body)
	return frontend, r.sessionCookie().Value
}

// signIn exchanges a fresh token for user and returns the frontend token
// and the session token.
func (e *env) signIn(user string) (frontend, session string) {
	e.t.Helper()
	frontend = e.fake.Issue(user, time.Hour)
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: frontend})
	require.Equal(e.t, http.StatusCreated, r.StatusCode, r.body)
	c := r.sessionCookie()
	require.NotNil(e.t, c)
	return frontend, c.Value
}

// commandCalls returns how many times Redis ran each command so far.
func (e *env) commandCalls() map[string]int {
	e.t.Helper()
	info, err := redis.String(e.redis.Do("INFO", "commandstats"))
	require.NoError(e.t, err)
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n := 0
		for _, c := range rest {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		calls[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return calls
}

// clock is a controllable clock: real time plus an offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func httptestRecorder(h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// impatient makes every later upstream call give up after d: for tests of
// a hanging upstream, where only this timeout can end the call.
func (e *env) impatient(d time.Duration) { e.upstreamDeadline.Store(int64(d)) }

// deadlined is a provider whose calls end after *d, when it is set.
type deadlined struct {
	provider.Provider
	d *atomic.Int64
}

func (p deadlined) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	if d := time.Duration(p.d.Load()); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return p.Provider.Validate(ctx, token)
}

// editIdentity is a provider whose identities edit changes: a provider
// that says less of its tokens, or names another provider.
type editIdentity struct {
	provider.Provider
	edit func(*provider.Identity)
}

func (p editIdentity) Validate(ctx context.Context, token string) (*provider.Identity, error) {
	id, err := p.Provider.Validate(ctx, token)
	if id != nil {
		p.edit(id)
	}
	return id, err
}
