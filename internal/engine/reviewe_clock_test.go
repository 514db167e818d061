package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sessiongate/sessiongate/internal/backend"
)

// TestReviewEFakeClockPastLifetimeReexchange: a fake clock (Config.Now) moved
// past a session's lifetime; the same, still valid, frontend token comes
// back. LookupAt (engine clock) says the key is empty, but the memory
// store's Mint judges the old entry at time.Now() (still live), so the
// mint's Replace (empty) conflicts: ErrUnavailable (503) instead of a new
// session. Before 226e895, Lookup used time.Now() too and this minted.
func TestReviewEFakeClockPastLifetimeReexchange(t *testing.T) {
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	e, fake := clockEngine(t, nil, func() time.Time { return *now.Load() })
	ctx := context.Background()
	front := fake.Issue("clock", 3*time.Hour)
	l, err := e.Exchange(ctx, front, e.Selector(front), func() Client { return Client{} }, nil)
	require.NoError(t, err)
	require.True(t, l.Minted)

	after := start.Add(61 * time.Minute)
	now.Store(&after)
	again, err := e.Exchange(ctx, front, e.Selector(front), func() Client { return Client{} }, nil)
	t.Logf("re-exchange after the fake clock passed the lifetime: err=%v unavailable=%v", err, errors.Is(err, backend.ErrUnavailable))
	require.NoError(t, err, "a valid frontend token after its session expired mints a new session")
	assert.True(t, again.Minted)
}
