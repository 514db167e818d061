package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

// TestCachesHoldNoToken looks inside the engine's caches after tokens went
// through them: the negative cache and the decoded-record cache are keyed
// by HMACs and selectors, never by a frontend or session token.
func TestCachesHoldNoToken(t *testing.T) {
	t.Parallel()
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	e := New(Config{
		Store:            store.NewMemory(),
		Provider:         plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
		Secret:           format.NewSecret([]byte("cache-secret-0123456789abcdef")),
		Lifetime:         time.Hour,
		NegativeCacheTTL: time.Minute,
		ExchangeTimeout:  10 * time.Second,
		Logger:           slog.New(slog.DiscardHandler),
		Now:              time.Now,
	})
	ctx := context.Background()
	good, bad := fake.Issue("cache", time.Hour), fake.Issue("cache", time.Hour)
	fake.Revoke(bad)
	l, err := e.Exchange(ctx, good, e.Selector(good), func() Client { return Client{IP: "203.0.113.9"} }, nil)
	require.NoError(t, err)
	again, err := e.Load(ctx, l.Token)
	require.NoError(t, err)
	require.NotNil(t, again)
	_, err = e.Exchange(ctx, bad, e.Selector(bad), func() Client { return Client{} }, nil)
	require.ErrorIs(t, err, provider.ErrInvalidToken)

	keys := e.negative.entries.Keys()
	for _, k := range e.records.entries.Keys() {
		keys = append(keys, string(k[:]))
	}
	require.Len(t, keys, 2, "one entry in each cache: %q", keys)
	for _, k := range keys {
		for _, token := range []string{good, bad} {
			assert.False(t, strings.Contains(token, k) || strings.Contains(k, token), "cache key %q holds part of a frontend token", k)
		}
		// The record cache is keyed by the store key, which names a
		// session but does not open it: never the validator.
		assert.NotContains(t, k, l.Token[format.SelectorChars:], "cache key %q holds a validator", k)
	}
}
