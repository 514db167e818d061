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

// timedObserver is an Observer that times the kinds it is told to.
type timedObserver struct {
	timed  bool
	events atomic.Int64
}

func (o *timedObserver) Begin(ctx context.Context, _ Event) context.Context { return ctx }
func (o *timedObserver) Observe(context.Context, Event)                     { o.events.Add(1) }
func (o *timedObserver) Timed(Kind) bool                                    { return o.timed }

// clockEngine is an engine on a memory store and a fake Plurality, with
// observer obs (nil: none) and clock now.
func clockEngine(t *testing.T, obs Observer, now func() time.Time) (*Engine, *providertest.Plurality) {
	fake := providertest.NewPlurality()
	t.Cleanup(fake.Close)
	return New(Config{
		Store:            store.NewMemory(),
		Provider:         plurality.New(plurality.Config{BaseURL: fake.URL, ClientID: fake.ClientID, ClientSecret: provider.Secret(fake.ClientSecret)}),
		Secret:           format.NewSecret([]byte("clock-secret-0123456789abcdef")),
		Lifetime:         time.Hour,
		NegativeCacheTTL: time.Minute,
		ExchangeTimeout:  10 * time.Second,
		Logger:           slog.New(slog.DiscardHandler),
		Observer:         obs,
		Now:              now,
	}), fake
}

// TestSteadyRequestReadsTheClockOnce counts Config.Now's readings: a
// request carrying a live session (its session token, or its frontend
// token) reads the clock once, the memory store judging its entries at
// that reading (backend.LookupAt); an observer that times operations
// gets the exchange's Time and Duration, one reading more.
func TestSteadyRequestReadsTheClockOnce(t *testing.T) {
	t.Parallel()
	for _, timed := range []bool{false, true} {
		var reads atomic.Int64
		obs := &timedObserver{timed: timed}
		e, fake := clockEngine(t, obs, func() time.Time { reads.Add(1); return time.Now() })
		ctx := context.Background()
		front := fake.Issue("clock", time.Hour)
		l, err := e.Exchange(ctx, front, e.Selector(front), func() Client { return Client{} }, nil)
		require.NoError(t, err)
		require.True(t, l.Minted)

		reads.Store(0)
		again, err := e.Load(ctx, l.Token)
		require.NoError(t, err)
		require.NotNil(t, again.Session)
		assert.Equal(t, int64(1), reads.Load(), "clock readings of a session token's request (timed: %v)", timed)

		reads.Store(0)
		events := obs.events.Load()
		same, err := e.Exchange(ctx, front, e.Selector(front), func() Client { return Client{} }, nil)
		require.NoError(t, err)
		require.False(t, same.Minted)
		require.Equal(t, l.Session.ID, same.Session.ID)
		want := int64(1)
		if timed {
			want = 2 // the exchange's Time
		}
		assert.Equal(t, want, reads.Load(), "clock readings of a frontend token's request (timed: %v)", timed)
		assert.Equal(t, events+2, obs.events.Load(), "the exchange's events (exchanged, its end) still reach the observer")
	}
}

// TestMemoryLookupIsJudgedAtTheCallersClock: the engine's reading decides
// what the memory store still holds, so that a clock the engine is given
// and the store's expiries, which the engine stamped, agree.
func TestMemoryLookupIsJudgedAtTheCallersClock(t *testing.T) {
	t.Parallel()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	e, fake := clockEngine(t, nil, func() time.Time { return *now.Load() })
	ctx := context.Background()
	front := fake.Issue("clock", 3*time.Hour)
	l, err := e.Exchange(ctx, front, e.Selector(front), func() Client { return Client{} }, nil)
	require.NoError(t, err)

	before := start.Add(59 * time.Minute)
	now.Store(&before)
	got, err := e.Load(ctx, l.Token)
	require.NoError(t, err)
	assert.NotNil(t, got.Session, "live a minute before its expiry")

	after := start.Add(61 * time.Minute)
	now.Store(&after)
	got, err = e.Load(ctx, l.Token)
	require.NoError(t, err)
	assert.Nil(t, got.Session, "gone a minute after it")
}

// WallClock tells time.Now itself from any other clock, a closure around
// it included.
func TestWallClock(t *testing.T) {
	assert.True(t, backend.WallClock(time.Now).Wall)
	assert.False(t, backend.WallClock(func() time.Time { return time.Now() }).Wall)
	var c struct{ clock }
	assert.False(t, backend.WallClock(c.now).Wall)
}

type clock struct{}

func (clock) now() time.Time { return time.Now() }
