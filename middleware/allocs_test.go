package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/middleware"
)

// TestSteadyStateAllocations counts the allocations of a steady-state
// request on the memory store (a live session, nothing to write) for each
// way a client carries it, against issue #15's targets: the cookie or the
// session header at most 6, the frontend token alone (bearer-only, up to
// 1 KiB) at most 10; an 8 KiB token no more than a 1 KiB one. The handler
// reads the user and allocates nothing itself. Allocation counts are
// exact, but -race adds its own: the test runs without it only.
func TestSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("-race allocates on its own: allocation counts are asserted without it")
	}
	e := newEnv(t, "memory", func(c *middleware.Config) { c.Logger = discardLogger })
	frontend, session := e.signIn("counted")
	h := e.auth.Handler(e.auth.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := middleware.UserFrom(r.Context()); !ok {
			t.Error("no user")
		}
	})))
	big := tokenOfSize(t, e, "counted-big", 8<<10)
	kilo := tokenOfSize(t, e, "counted-kilo", 1<<10)
	e.exchange(big)
	e.exchange(kilo)

	cases := []struct {
		name    string
		prepare func(r *http.Request)
		max     float64
	}{
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookieName, Value: session}) }, 6},
		{"header", func(r *http.Request) { r.Header.Set("X-Session-Token", session) }, 6},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+frontend) }, 10},
		{"bearer 1 KiB", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+kilo) }, 10},
		{"bearer 8 KiB", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+big) }, 10},
	}
	counts := map[string]float64{}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		c.prepare(r)
		w := &discardWriter{h: http.Header{}}
		serve := func() {
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, r)
		}
		serve()
		require.Equal(t, 0, w.status, "%s: the request is served as it is, nothing set on the response: %v", c.name, w.h)
		require.Empty(t, w.h, "%s: a steady request sets no header", c.name)
		n := testing.AllocsPerRun(200, serve)
		t.Logf("%s: %.0f allocations per request", c.name, n)
		assert.LessOrEqual(t, n, c.max, "%s: allocations per steady-state request", c.name)
		counts[c.name] = n
	}
	assert.LessOrEqual(t, counts["bearer 8 KiB"], counts["bearer 1 KiB"], "a larger token costs no more allocations")
}
