package middleware_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/middleware"
	"github.com/sessiongate/sessiongate/provider/providertest"
)

// The session-management checks of OWASP ASVS and the OWASP session and
// JWT cheat sheets, each at the HTTP level.

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestSessionTokensAreRandomAndUnique(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	const n = 300
	seen := map[string]bool{}
	ones := make([]int, 256)
	for i := range n {
		user := fmt.Sprintf("user%d", i)
		_, token := e.signIn(user)
		require.False(t, seen[token], "unique")
		seen[token] = true
		assert.NotContains(t, token, user, "carries no meaning")
		b, err := base64.RawURLEncoding.DecodeString(token)
		require.NoError(t, err)
		require.Len(t, b, 32, "256 bits")
		for bit := range 256 {
			ones[bit] += int(b[bit/8] >> (bit % 8) & 1)
		}
	}
	for bit, c := range ones {
		// Each bit is set in about half the tokens: 0.35..0.65 of 300 is
		// over 5 standard deviations either way.
		assert.InDelta(t, n/2, c, 0.15*n, "bit %d is set in %d of %d tokens", bit, c, n)
	}
}

func TestAFreshTokenAtEveryMint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", func(c *middleware.Config) { c.IdleTimeout = 10 * time.Minute })
	frontend, first := e.signIn("nina")
	e.clock.Advance(11 * time.Minute)
	r := e.do(req{path: "/api/me", bearer: frontend})
	require.Equal(t, http.StatusOK, r.StatusCode, "the idle session is minted anew from its valid token")
	second := r.sessionCookie().Value
	assert.NotEqual(t, first, second, "a new session token, though the frontend token is the same")
	assert.Equal(t, format.KeyOf(first), format.KeyOf(second), "under the same key")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: first}).StatusCode, "the earlier token is dead")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: second}).StatusCode)
}

func TestUnknownSessionTokensStoreNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	_, real := e.signIn("omar")
	keys := func() []string {
		k, err := redis.Strings(e.redis.Do("KEYS", "*"))
		require.NoError(t, err)
		return k
	}
	before := keys()
	forged := format.Token([16]byte([]byte(format.KeyOf(real))), [16]byte{}) // a real session's selector, a made-up validator
	for _, token := range []string{randomToken(), randomToken(), forged} {
		r := e.do(req{path: "/api/me", cookie: token})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		c := r.sessionCookie()
		require.NotNil(t, c, "the dead cookie is cleared")
		assert.Empty(t, c.Value)
		assert.Less(t, c.MaxAge, 0)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: token}).StatusCode)
		assert.Equal(t, "hello anonymous", e.do(req{path: "/public", header: token}).body)
	}
	assert.ElementsMatch(t, before, keys(), "nothing stored for unknown tokens")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: real}).StatusCode)
}

func TestTokensAreNeverTakenFromTheURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	frontend, session := e.signIn("pia")
	for _, q := range []string{"session=" + session, "X-Session-Token=" + session, "access_token=" + frontend, "token=" + frontend, "id_token=" + frontend} {
		r := e.do(req{path: "/api/me?" + q})
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, q)
		assert.NotContains(t, r.body, session)
		assert.NotContains(t, r.body, frontend)
	}
	assert.EqualValues(t, 1, e.fake.Calls(), "the sign-in only")
}

func TestClientHeadersNeverDecide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, session := e.signIn("quentin")
	spoofed := map[string]string{
		"X-Forwarded-For": "10.9.8.7", "X-Real-IP": "10.9.8.7", "Forwarded": "for=10.9.8.7;proto=https",
		"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "User-Agent": "another-agent/9",
		"Origin": "https://evil.example",
	}
	r := e.do(req{path: "/auth/session", cookie: session, hdr: spoofed})
	require.Equal(t, http.StatusOK, r.StatusCode, "a session is not bound to headers a client controls")
	session0 := r.json(t)["session"].(map[string]any)
	assert.Equal(t, "127.0.0.1", session0["ip"], "recorded from the connection, not X-Forwarded-For")

	r = e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("quentin", time.Hour), hdr: spoofed})
	require.Equal(t, http.StatusCreated, r.StatusCode)
	assert.Equal(t, "127.0.0.1", r.json(t)["session"].(map[string]any)["ip"])
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: randomToken(), hdr: spoofed}).StatusCode)
}

func TestHostPrefixedCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Cookie.Name = "__Host-sid" })
	r := e.do(req{method: http.MethodPost, path: "/auth/session", bearer: e.fake.Issue("rosa", time.Hour)})
	require.Equal(t, http.StatusCreated, r.StatusCode)
	var c *http.Cookie
	for _, k := range r.Cookies() {
		if k.Name == "__Host-sid" {
			c = k
		}
	}
	require.NotNil(t, c)
	assert.True(t, c.Secure)
	assert.Equal(t, "/", c.Path)
	assert.Empty(t, c.Domain)
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", hdr: map[string]string{"Cookie": "__Host-sid=" + c.Value}}).StatusCode)

	for name, mod := range map[string]func(*middleware.Config){
		"insecure": func(c *middleware.Config) { c.InsecureCookie = true },
		"domain":   func(c *middleware.Config) { c.Cookie.Domain = "example.com" },
		"path":     func(c *middleware.Config) { c.Cookie.Path = "/app" },
	} {
		assert.Panics(t, func() {
			newEnv(t, "memory", func(c *middleware.Config) { c.Cookie.Name = "__Host-sid" }, mod)
		}, name)
	}
}

func TestResponsesThatSetTheSessionAreNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	r := e.do(req{path: "/api/me", bearer: e.fake.Issue("sven", time.Hour)})
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.NotNil(t, r.sessionCookie())
	assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	assert.Subset(t, varyNames(r.Response), []string{"Cookie", "Authorization"})
	out := e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: r.sessionCookie().Value})
	assert.Equal(t, "no-store", out.Header.Get("Cache-Control"), "nor those that clear it")
}

func TestGetChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	_, a := e.signIn("tess")
	_, b := e.signIn("tess")
	for _, path := range []string{"/auth/sessions/others", "/auth/sessions", "/auth/session"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			e.do(req{method: m, path: path, cookie: a})
		}
	}
	list := e.do(req{path: "/auth/sessions", cookie: b}).json(t)["sessions"].([]any)
	assert.Len(t, list, 2, "no method but DELETE ends a session")
}

func TestGuessingSessionTokensIsRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", func(c *middleware.Config) {
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	_, mine := e.signIn("uma")
	guesser := map[string]string{"X-Test-Client": "203.0.113.9"}
	for i := range 20 {
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser}).StatusCode, "guess %d", i)
	}
	reads := e.commandCalls()["get"]
	r := e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser})
	assert.Equal(t, http.StatusTooManyRequests, r.StatusCode)
	assert.Equal(t, "rate_limited", r.json(t)["error"])
	assert.Equal(t, "3", r.Header.Get("Retry-After"))
	assert.Equal(t, reads+1, e.commandCalls()["get"], "one store read, as for any request: a live session would be served")
	assert.Equal(t, "hello anonymous", e.do(req{path: "/public", hdr: guesser}).body, "requests without credentials are served")
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", header: randomToken(), hdr: guesser}).StatusCode,
		"a dead session header, which no Set-Cookie can clear, gets its usual answer, so that its client signs in again")
	assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", header: mine, hdr: map[string]string{"X-Test-Client": "198.51.100.1"}}).StatusCode,
		"other clients are not affected")

	e.clock.Advance(3 * time.Second)
	assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser}).StatusCode, "one more guess per interval")
	assert.Equal(t, http.StatusTooManyRequests, e.do(req{path: "/api/me", cookie: randomToken(), hdr: guesser}).StatusCode)

	v6 := func(addr string) map[string]string { return map[string]string{"X-Test-Client": addr} }
	for i := range 20 {
		e.do(req{path: "/api/me", cookie: randomToken(), hdr: v6(fmt.Sprintf("2001:db8:1:2::%x", i+1))})
	}
	assert.Equal(t, http.StatusTooManyRequests, e.do(req{path: "/api/me", cookie: randomToken(), hdr: v6("2001:db8:1:2:ffff::1")}).StatusCode,
		"IPv6 clients are counted by their /64")
}

func TestGuessingFrontendTokensIsRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "memory")
	for range 20 {
		forged := e.fake.Issue("victim", time.Hour)
		e.fake.Revoke(forged)
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: forged}).StatusCode)
	}
	calls := e.fake.Calls()
	r := e.do(req{path: "/api/me", bearer: e.fake.Issue("victim", time.Hour)})
	assert.Equal(t, http.StatusOK, r.StatusCode, "a good token from a client that has been guessing is validated, not refused")
	assert.Equal(t, calls+1, e.fake.Calls(), "once")
	for range 5 {
		assert.Equal(t, http.StatusUnauthorized, e.do(req{path: "/api/me", bearer: "not a token"}).StatusCode)
	}
	assert.Equal(t, calls+1, e.fake.Calls(), "malformed tokens never reach the provider")

	// A repeated rejected token (the negative cache answers it) and a
	// signed-out one are not guesses: a retrying client is not locked out.
	f := newEnv(t, "memory")
	bad := f.fake.Issue("victim", time.Hour)
	f.fake.Revoke(bad)
	for range 50 {
		assert.Equal(t, http.StatusUnauthorized, f.do(req{path: "/api/me", bearer: bad}).StatusCode)
	}
	frontend, session := f.signIn("wendy")
	f.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session})
	for range 50 {
		assert.Equal(t, http.StatusUnauthorized, f.do(req{path: "/api/me", bearer: frontend}).StatusCode)
	}
	_, again := f.signIn("wendy")
	assert.NotEmpty(t, again)
}

func TestLogsCarryNoCredentialAtAnyLevel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis", func(c *middleware.Config) { c.GuessBurst = 2 })
	frontend, session := e.signIn("xena")
	e.do(req{path: "/api/me", cookie: session})
	e.do(req{path: "/api/me", bearer: frontend})
	e.do(req{method: http.MethodPost, path: "/api/note?v=x", cookie: session, hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	e.do(req{method: http.MethodDelete, path: "/auth/session", cookie: session})
	e.do(req{path: "/api/me", cookie: session})
	e.redis.Stop()
	down := e.fake.Issue("xena", time.Hour)
	e.do(req{path: "/api/me", bearer: down})
	e.redis.Restart()
	guesses := []string{randomToken(), randomToken(), randomToken()}
	for _, g := range guesses {
		e.do(req{path: "/api/me", header: g})
	}

	logs := e.logs.String()
	for _, event := range []string{"session minted", "session reused", "session ended", "rate limited", "store unavailable"} {
		require.Contains(t, logs, event)
	}
	for _, secret := range append([]string{frontend, session, down, testSecret, e.fake.ClientSecret, "Bearer "}, guesses...) {
		assert.NotContains(t, logs, secret)
	}
	assert.False(t, strings.Contains(logs, "Cookie") || strings.Contains(logs, "Authorization"), "no header dumps")
}

func TestProviderFaultsCreateNothingAndKeepExistingSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redis")
	_, existing := e.signIn("yara")
	keys, _ := redis.Strings(e.redis.Do("KEYS", "*"))
	for name, fault := range map[string]providertest.Fault{
		"down": {Down: true}, "hanging": {Delay: time.Hour}, "429": {Status: 429}, "502": {Status: 502},
		"garbage": {Body: []byte("\x00\xff<html>")}, "100 MB": {BodySize: 100 << 20},
	} {
		e.fake.SetFault(fault)
		e.impatient(time.Second) // a hanging upstream is cut by the provider timeout
		r := e.do(req{path: "/api/me", bearer: e.fake.Issue("yara", time.Hour)})
		assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, name)
		assert.NotEmpty(t, r.Header.Get("Retry-After"), name)
		assert.Equal(t, http.StatusOK, e.do(req{path: "/api/me", cookie: existing}).StatusCode, "%s: existing sessions answer", name)
	}
	after, _ := redis.Strings(e.redis.Do("KEYS", "*"))
	assert.ElementsMatch(t, keys, after, "no session was created")
}

// TestHugeUpstreamAnswerKeepsMemoryBounded runs alone (not parallel), so
// that the allocation figure is this exchange's.
func TestHugeUpstreamAnswerKeepsMemoryBounded(t *testing.T) {
	e := newEnv(t, "memory")
	e.fake.SetFault(providertest.Fault{BodySize: 100 << 20})
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	r := e.do(req{path: "/api/me", bearer: e.fake.Issue("zoe", time.Hour)})
	goruntime.ReadMemStats(&after)
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a 100 MB upstream answer cost %d KB of allocations", allocated>>10)
	assert.Less(t, allocated, uint64(16<<20), "the answer is cut at 1 MiB, never read whole")
}
