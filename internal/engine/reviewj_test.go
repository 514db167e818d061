package engine

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
	"github.com/sessiongate/sessiongate/internal/format"
	"github.com/sessiongate/sessiongate/provider"
	"github.com/sessiongate/sessiongate/provider/plurality"
	"github.com/sessiongate/sessiongate/provider/providertest"
	"github.com/sessiongate/sessiongate/store"
)

type rvjClock struct{ off atomic.Int64 }

func (c *rvjClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Review J: two engines built directly on one memory store, each with its
// own clock object of one type (method values a.Now, b.Now; b 2h behind).
// At the review, Follows compared reflect code pointers, equal for every
// method value of (*rvjClock).Now, so engine b kept b.Now while the store
// judged at a.Now, and a valid frontend token's exchange failed. Every
// engine now reads the store's clock, the first one's.
func TestReviewJEngineKeepsLookalikeClock(t *testing.T) {
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	st := store.NewMemory()
	mk := func(now func() time.Time) *Engine {
		return New(Config{
			Store:           st,
			Provider:        plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
			Secret:          format.NewSecret([]byte("clock-secret-0123456789abcdef")),
			Lifetime:        time.Hour,
			ExchangeTimeout: 10 * time.Second,
			Logger:          slog.New(slog.DiscardHandler),
			Now:             now,
		})
	}
	a, b := &rvjClock{}, &rvjClock{}
	b.off.Store(int64(-2 * time.Hour))
	_ = mk(a.Now)
	eb := mk(b.Now)
	clock, _ := backend.ClockOf(st)
	t.Logf("engine b reads %v, store reads %v", eb.cfg.Now().Round(time.Minute), clock.Now().Round(time.Minute))
	front := fake.Issue("lookalike", 4*time.Hour)
	l, err := eb.Exchange(context.Background(), front, eb.Selector(front), func() Client { return Client{} }, nil)
	t.Logf("exchange on b: err=%v", err)
	require.NoError(t, err, "a valid token mints")
	assert.True(t, l.Minted)
}
