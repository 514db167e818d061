package middleware

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// TestCachesHoldNoToken looks inside the process's caches after tokens
// went through them: the negative cache, the decoded-record cache and the
// guess limiter are keyed by HMACs, selectors and addresses, never by a
// frontend or session token.
func TestCachesHoldNoToken(t *testing.T) {
	t.Parallel()
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	a := New(Config{
		Sessions: store.NewManager(store.NewMemory()),
		Provider: plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
		Secret:   "cache-secret-0123456789abcdef",
		Logger:   slog.New(slog.DiscardHandler),
	})
	h := a.Handler(a.RequireSession(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	serve := func(hdr, value string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(hdr, value)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	good, bad := fake.Issue("cache", time.Hour), fake.Issue("cache", time.Hour)
	fake.Revoke(bad)
	w := serve("Authorization", "Bearer "+good)
	require.Equal(t, http.StatusOK, w.Code)
	session := w.Header().Get("X-Session-Token")
	require.Equal(t, http.StatusOK, serve("X-Session-Token", session).Code)
	require.Equal(t, http.StatusUnauthorized, serve("Authorization", "Bearer "+bad).Code)
	require.Equal(t, http.StatusUnauthorized, serve("X-Session-Token", strings.Repeat("A", 43)).Code)

	var keys []string
	for k := range a.negative.entries {
		keys = append(keys, k)
	}
	for k := range a.records.m {
		keys = append(keys, k)
	}
	for k := range a.guesses.clients {
		keys = append(keys, k)
	}
	require.Len(t, keys, 3, "one entry in each cache: %q", keys)
	for _, k := range keys {
		for _, token := range []string{good, bad} {
			assert.False(t, strings.Contains(token, k) || strings.Contains(k, token), "cache key %q holds part of a frontend token", k)
		}
		// The record cache is keyed by the selector, which names a session
		// (it is its store key) but does not open it: never the validator.
		assert.NotContains(t, k, session[cacheKeyLen:], "cache key %q holds a validator", k)
	}
}
