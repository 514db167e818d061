package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// credentialOf names what r carries: its Cookie, X-Session-Token and
// Authorization headers as sent.
func credentialOf(r *http.Request) string {
	return r.Header.Get("Cookie") + "|" + r.Header.Get("X-Session-Token") + "|" + r.Header.Get("Authorization")
}

// Review F: measurePaired gives each row's two flanking anchor runs the
// row's own requests (README, Performance: "Those anchor runs get the
// scenario's requests, cookie or token included"). The anchor's handler
// records what each request carried; every row's credential must have
// reached it, and the anchor never answers anything but 200 for it.
// TestHarnessSmoke would not notice the anchor losing them.
func TestReviewFAnchorRunsCarryTheRowsCredential(t *testing.T) {
	g := memoryGroup(t)
	var mu sync.Mutex
	seen := map[string]int{}
	inner := g.anchor.handler
	g.anchor.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[credentialOf(r)]++
		mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	anchor, rows := measurePaired(t, g, 2, benchConfig{d: 20 * time.Millisecond, rounds: 1, clients: []int{2}})
	assert.Len(t, rows, len(g.rows))
	assert.Len(t, anchor.ratios, len(g.rows), "one anchor pair per row")
	for _, s := range g.rows {
		r := httptest.NewRequest("GET", "/", nil)
		s.prepare(r)
		c := credentialOf(r)
		assert.NotZero(t, seen[c], "the anchor runs around %q got its credential", s.name)
	}
	t.Logf("distinct credentials the anchor saw: %d (rows %d)", len(seen), len(g.rows))
}
