package guesslimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// After a clock stepped forward (a sweep ran at the wrong reading) and
// back, sweeps resume from the corrected time: a client that failed only
// after the correction is forgotten once its bucket is full again.
func TestSweepsStopAfterAClockSteppedForwardAndBack(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(burst, interval, clock.Now)
	clock.Advance(365 * 24 * time.Hour)
	l.Failed("198.51.100.1", 1) // a failure read during the bad year: sweeps, lastSweep = bad year
	clock.Advance(-365 * 24 * time.Hour)

	l.Failed("192.0.2.1", 1) // after the correction
	clock.Advance(time.Hour)
	require.Zero(t, l.Wait("192.0.2.1"), "its bucket is full again")
	l.Failed("192.0.2.2", 1) // a new client: sweeps (at most once per interval; an hour has passed)
	assert.NotContains(t, l.Clients(), "192.0.2.1",
		"a client that failed only after the correction, full again an hour later, is forgotten")
}

// A clock stepped forward and back holds only the clients that failed
// meanwhile: one that only asked (Wait) during the wrong reading is free
// as soon as one that stayed away.
func TestAClientThatOnlyAskedDuringTheBadReadingIsHeld(t *testing.T) {
	t.Parallel()
	clock := newClock()
	l := New(burst, interval, clock.Now)
	const asked, away = "192.0.2.1", "192.0.2.2"
	l.Failed(asked, 1) // tracked
	l.Failed(away, 1)  // tracked
	clock.Advance(365 * 24 * time.Hour)
	require.Zero(t, l.Wait(asked), "a request during the bad year: not limited")
	clock.Advance(-365 * 24 * time.Hour)

	require.True(t, l.Failed(asked, burst), "locked out after the correction")
	require.True(t, l.Failed(away, burst), "locked out after the correction")
	clock.Advance(time.Hour)
	assert.Zero(t, l.Wait(away), "the client that stayed away: free an hour later")
	assert.Zero(t, l.Wait(asked), "the client that only asked during the wrong reading: free an hour later too")
}
